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
		Limits:         DefaultLimits(),
		Dumps:          DefaultDumps(),
	}
}

// Bounds of the head size limits. Below 1KiB an ordinary browser request
// (cookies, user agent) no longer fits; above 16MiB a head is an attack or
// a bug, and each connection may buffer that much.
const (
	MinHeadSize Size = 1 << 10
	MaxHeadSize Size = 16 << 20
)

// DefaultLimits returns the limits: a config gets when it leaves them out.
// 64KiB heads are above what nginx (large_client_header_buffers, 4 × 8KiB)
// and Node (--max-http-header-size, 16KiB) accept by default, so an app
// moved from behind either does not start failing; the timeouts are generous enough for slow mobile
// clients and short enough that idle or stalled clients do not hold
// connections for long. The tunnel timeout is nginx's proxy_read_timeout
// default, which WebSocket apps moved from behind nginx already keep their
// connections alive within (Socket.IO pings every 25s).
func DefaultLimits() Limits {
	return Limits{
		RequestHead:       64 << 10,
		ResponseHead:      64 << 10,
		RequestBody:       0,
		MaxConnections:    0,
		HeadTimeout:       Duration(30 * time.Second),
		BodyTimeout:       Duration(60 * time.Second),
		KeepaliveTimeout:  Duration(2 * time.Minute),
		SendTimeout:       Duration(60 * time.Second),
		TunnelIdleTimeout: Duration(60 * time.Second),
		ResponseBuffer:    64 << 10,
		RequestBuffer:     16 << 20,
		BufferMemory:      64 << 20,
		BufferDisk:        1 << 30,
		ConnectionBuffer:  1 << 20,
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
			RecycleAfter:       Duration(time.Hour),
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
		AffinityCookie:      DefaultAffinityCookie,
		Limits:              DefaultLimits().App(),
		Upgrades:            []string{UpgradeWebSocket},
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
	ActionDump     = "dump"
)
