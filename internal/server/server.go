package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/oklog/run"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/autoheal"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Options adjust a server beyond its config.
type Options struct {
	// Console receives instance output (the foreground terminal); nil
	// discards it.
	Console io.Writer
	// Logger is gatehouse's own log; nil discards it.
	Logger *slog.Logger
	// Observe, if set, sees every finished request's access entry. The
	// entry is reused after the call returns.
	Observe func(*telemetry.AccessEntry)
}

// Server is one gatehouse instance: gateway, supervisor and admin API.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	events   *telemetry.Events
	lines    *telemetry.Lines
	eventsW  *telemetry.AsyncWriter
	accessW  *telemetry.AsyncWriter
	sup      *supervisor.Supervisor
	gw       *gateway.Gateway
	metrics  *metrics.Metrics
	healer   *autoheal.Healer
	publicLn net.Listener
	adminLn  net.Listener
	public   *front.Server
	adminSrv *http.Server
	// snapMu serialises snapshot writes (the loop and Diagnose): both use
	// the same temporary file.
	snapMu sync.Mutex
}

// New prepares a server and binds its listeners, so that an address in use
// is reported before any app process starts.
func New(cfg *config.Config, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		// Not fatal: logs are counted as failing, requests still flow.
		opts.Logger.Warn("cannot create data_dir; logs will be missing", "dir", cfg.DataDir, "err", err)
	}
	token, err := adminToken(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: opts.Logger}
	s.eventsW = telemetry.NewAsyncWriter(filepath.Join(cfg.DataDir, "events.log"), telemetry.WriterOptions{})
	s.accessW = telemetry.NewAsyncWriter(filepath.Join(cfg.DataDir, "access.log"), telemetry.WriterOptions{})
	s.events = telemetry.NewEvents(s.eventsW, 0)
	s.lines = telemetry.NewLines()
	s.sup = supervisor.New(cfg, supervisor.Options{
		Events: s.events, Lines: s.lines, DataDir: cfg.DataDir, Console: opts.Console, Logger: opts.Logger,
		SampleInterval: cfg.SampleInterval.D(),
		ProbeResult:    func(app, id string, r probe.Result) { s.metrics.ObserveProbe(app, id, r) },
	})
	s.metrics = metrics.New(s.sup)
	s.healer = autoheal.New(s.sup, s.events, cfg.SampleInterval.D(), opts.Logger)
	observe := func(e *telemetry.AccessEntry) {
		s.metrics.ObserveRequest(e)
		s.healer.Observe(e)
		if opts.Observe != nil {
			opts.Observe(e)
		}
	}
	s.gw = gateway.New(cfg, s.sup.Pools(), gateway.Options{
		Access:   telemetry.NewAccessLog(s.accessW),
		Observe:  observe,
		ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	})
	if s.publicLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		s.closeLogs()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if s.adminLn, err = net.Listen("tcp", cfg.Admin); err != nil {
		s.publicLn.Close()
		s.closeLogs()
		return nil, fmt.Errorf("admin listen on %s: %w", cfg.Admin, err)
	}
	s.public = front.New(s.gw, FrontOptions(cfg, slog.NewLogLogger(opts.Logger.Handler(), slog.LevelError)))
	s.adminSrv = &http.Server{
		Handler: admin.NewHandler(admin.Deps{
			Supervisor: s.sup, Events: s.events, Writers: s.writerStats, Ops: s, Metrics: s.metrics.Handler(),
			Lines: s.lines, Diagnose: s.Diagnose, Config: cfg, DataDir: cfg.DataDir, Token: token,
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	return s, nil
}

// FrontOptions are the public server's limits from cfg.
func FrontOptions(cfg *config.Config, errLog *log.Logger) front.Options {
	l := cfg.Limits
	return front.Options{
		HeadTimeout: l.HeadTimeout.D(), KeepaliveTimeout: l.KeepaliveTimeout.D(), BodyTimeout: l.BodyTimeout.D(),
		HeadLimit: int(l.RequestHead), MaxConnections: cfg.MaxConnections(), ErrorLog: errLog,
	}
}

// adminToken is the admin API's token: GATEHOUSE_ADMIN_TOKEN, else
// admin_token. An admin listener off loopback without one would hand
// process control and secrets to the network, so it refuses to start.
func adminToken(cfg *config.Config) (string, error) {
	token := os.Getenv("GATEHOUSE_ADMIN_TOKEN")
	if token == "" {
		token = cfg.AdminToken
	}
	if token == "" && !admin.IsLoopback(cfg.Admin) {
		return "", fmt.Errorf("admin %q is not a loopback address: set admin_token in the config or GATEHOUSE_ADMIN_TOKEN, or bind admin to 127.0.0.1", cfg.Admin)
	}
	return token, nil
}

// Addr is the public listener's address.
func (s *Server) Addr() string { return s.publicLn.Addr().String() }

// AdminAddr is the admin listener's address.
func (s *Server) AdminAddr() string { return s.adminLn.Addr().String() }

// Supervisor is the server's supervisor.
func (s *Server) Supervisor() *supervisor.Supervisor { return s.sup }

// Events is the server's event log.
func (s *Server) Events() *telemetry.Events { return s.events }

// Run serves until ctx ends, then shuts down in order.
func (s *Server) Run(ctx context.Context) error {
	supCtx, stopSup := context.WithCancel(context.Background())
	defer stopSup()
	var g run.Group
	// The order of actors is the order of shutdown: run.Group interrupts
	// them one after another.
	g.Add(func() error { <-ctx.Done(); return nil }, func(error) {})
	g.Add(func() error { return serveFront(s.public, s.publicLn) }, func(error) { s.drainPublic() })
	healCtx, stopHeal := context.WithCancel(context.Background())
	defer stopHeal()
	g.Add(func() error { return s.healer.Run(healCtx) }, func(error) { stopHeal() })
	g.Add(func() error { s.countEvents(healCtx); return nil }, func(error) { stopHeal() })
	g.Add(func() error { s.snapshotLoop(healCtx); return nil }, func(error) { stopHeal() })
	g.Add(func() error { return s.sup.Run(supCtx) }, func(error) { stopSup() })
	g.Add(func() error { return serve(s.adminSrv, s.adminLn) }, func(error) {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.adminSrv.Shutdown(c)
	})
	err := g.Run()
	s.closeLogs()
	return err
}

// drainPublic stops accepting and waits for in-flight requests, bounded
// by the longest stop_timeout.
func (s *Server) drainPublic() {
	var d time.Duration
	for _, a := range s.cfg.Apps {
		d = max(d, a.StopTimeout.D())
	}
	c, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := s.public.Shutdown(c); err != nil {
		s.public.Close()
	}
}

func serveFront(f *front.Server, ln net.Listener) error {
	if err := f.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

func serve(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

func (s *Server) closeLogs() {
	s.accessW.Close()
	s.eventsW.Close()
}

// countEvents feeds lifecycle events to the metrics until ctx ends.
func (s *Server) countEvents(ctx context.Context) {
	ch, cancel := s.events.Subscribe(1024)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-ch:
			s.metrics.ObserveEvent(ev)
		}
	}
}

func (s *Server) writerStats() map[string]telemetry.WriterStats {
	return map[string]telemetry.WriterStats{"access.log": s.accessW.Stats(), "events.log": s.eventsW.Stats()}
}
