package config

import "time"

// Defaults for keys a config leaves out. They match the seed platform where
// it has a number (230 s start and request limits) so that an app moved
// from there behaves the same.
const (
	DefaultListen  = ":8080"
	DefaultAdmin   = "127.0.0.1:9901"
	DefaultDataDir = ".gatehouse"
)

// Default returns a config with every top-level default and no apps.
func Default() *Config {
	return &Config{
		Listen:  DefaultListen,
		Admin:   DefaultAdmin,
		DataDir: DefaultDataDir,
		// Every few seconds is enough to see memory grow or a socket
		// leak, and cheap: one pass over /proc for all instances.
		SampleInterval: Duration(5 * time.Second),
	}
}

// NewApp returns an app named name with every default filled in. The
// decoder starts each app from it, so an explicit key (even 0) overrides a
// default and can then be validated.
func NewApp(name string) *App {
	return &App{
		Name:      name,
		Dir:       ".",
		Instances: 1,
		Health: Health{
			Interval:           Duration(5 * time.Second),
			Timeout:            Duration(2 * time.Second),
			UnhealthyThreshold: 3,
			HealthyThreshold:   1,
			Status:             StatusRange{Min: 200, Max: 399},
		},
		StartTimeout:        Duration(230 * time.Second),
		StopTimeout:         Duration(30 * time.Second),
		RequestTimeout:      Duration(230 * time.Second),
		HoldTimeout:         Duration(30 * time.Second),
		IdleTimeout:         0,
		QueueSize:           1000,
		MaxAttempts:         3,
		RetryBodyLimit:      1 << 20,
		UpstreamIdleTimeout: Duration(4 * time.Second),
	}
}

// NewAutoHeal returns the defaults of an auto_heal block that is present:
// recycle, at most 5 recycles an hour, no triggers.
func NewAutoHeal() *AutoHeal {
	return &AutoHeal{
		Action:      ActionRecycle,
		MaxRecycles: &RateLimit{Count: 5, Per: Duration(time.Hour)},
	}
}

// Auto-heal actions.
const (
	ActionRecycle  = "recycle"
	ActionLogEvent = "log_event"
	ActionCustom   = "custom"
)
