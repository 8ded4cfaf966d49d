package supervisor

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/procstat"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Options are the supervisor's collaborators.
type Options struct {
	// Events receives lifecycle events. Required.
	Events *telemetry.Events
	// Lines, if set, receives every line of instance output (the log
	// stream).
	Lines *telemetry.Lines
	// DataDir holds logs/APP/INSTANCE.log.
	DataDir string
	// Console, if set, receives every instance's output prefixed with its
	// id (the foreground terminal).
	Console io.Writer
	// Logger is gatehouse's own log.
	Logger *slog.Logger
	// SampleInterval is how often process statistics are read; 0 means
	// 5s.
	SampleInterval time.Duration
	// ProbeResult, if set, sees every probe's result (metrics).
	ProbeResult func(app, instance string, r probe.Result)
}

// Supervisor owns every app's processes.
type Supervisor struct {
	opts   Options
	prober *probe.Prober
	reader procstat.Reader
	// sampleKick asks the sample loop for an early sample.
	sampleKick chan struct{}
	ports      *ports
	console    *console
	// records is data_dir/processes.json; nil without a data_dir.
	records *records

	mu    sync.Mutex
	apps  map[string]*App
	order []string
}

// New prepares a supervisor for cfg; Run starts the instances.
func New(cfg *config.Config, opts Options) *Supervisor {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Supervisor{
		opts:       opts,
		prober:     probe.New(),
		reader:     procstat.NewReader(),
		sampleKick: make(chan struct{}, 1),
		ports:      newPorts(),
		console:    &console{w: opts.Console},
		apps:       map[string]*App{},
		records:    newRecords(opts.DataDir, opts.Logger),
	}
	for _, name := range cfg.Order {
		s.apps[name] = newApp(s, cfg.Apps[name])
		s.order = append(s.order, name)
	}
	return s
}

// App returns the named app, or nil.
func (s *Supervisor) App(name string) *App {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apps[name]
}

// Apps returns the apps in config order.
func (s *Supervisor) Apps() []*App {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*App, 0, len(s.order))
	for _, n := range s.order {
		out = append(out, s.apps[n])
	}
	return out
}

// Pools returns each app's pool by name, for the gateway.
func (s *Supervisor) Pools() map[string]*pool.Pool {
	out := map[string]*pool.Pool{}
	for _, a := range s.Apps() {
		out[a.name] = a.pool
	}
	return out
}

// Run starts every app's instances and supervises them until ctx ends;
// then it stops them all drain-first and returns once no process remains.
func (s *Supervisor) Run(ctx context.Context) error {
	// Instances live on their own context: ctx ending starts an orderly
	// stop rather than cancelling everything mid-step.
	ictx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	// A previous gatehouse on this data_dir that was killed hard may have
	// left its apps running: stop them before starting ours.
	s.records.stopLeftovers(s.opts.Events)
	s.records.claim()
	for _, a := range s.Apps() {
		a.begin(ictx)
	}
	every := s.opts.SampleInterval
	if every <= 0 {
		every = 5 * time.Second
	}
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		s.sampleLoop(ctx, every)
	}()
	<-ctx.Done()
	<-sampled
	var wg sync.WaitGroup
	for _, a := range s.Apps() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.stopAll()
		}()
	}
	wg.Wait()
	return nil
}

// environ is the environment an app's processes start with: gatehouse's
// own, then the app's env: on top.
func (s *Supervisor) environ(appEnv map[string]string) []string {
	env := s.baseEnv()
	for k, v := range appEnv {
		env = append(env, k+"="+v)
	}
	return env
}

// baseEnv is gatehouse's environment without variables it sets itself.
func (s *Supervisor) baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "PORT", "WEBSITES_PORT", "GATEHOUSE_APP", "GATEHOUSE_INSTANCE", "GATEHOUSE_ADMIN_TOKEN", runEnv,
			// systemd's, for gatehouse: an app acting on them would speak for the service.
			"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
			continue
		}
		env = append(env, kv)
	}
	return env
}
