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
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/alerts"
	"github.com/gatehouse/gatehouse/internal/autoheal"
	"github.com/gatehouse/gatehouse/internal/autoscale"
	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/dumps"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/handover"
	"github.com/gatehouse/gatehouse/internal/history"
	"github.com/gatehouse/gatehouse/internal/memtrim"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/sdnotify"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/tracing"
	"github.com/gatehouse/gatehouse/internal/trust"
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
	// CertRenewCheck is how often ACME certificates are checked for
	// renewal; 0 means certmagic's default (10 minutes). Tests shorten it.
	CertRenewCheck time.Duration
	// CertIgnoreARI makes renewal follow renew_before alone, not the
	// CA's renewal-info window. Tests set it: a test CA's window for a
	// seconds-long certificate (Pebble's spans a day either side) makes
	// a restart renew at once about half the time.
	CertIgnoreARI bool
	// Executable and Args start the successor of an upgrade: the
	// gatehouse binary at that path, read afresh, with those arguments
	// (the gatehouse command passes os.Executable() and os.Args[1:]).
	// Empty Executable: no upgrade (a server embedded in another
	// program). The successor shares this process's stdout, stderr and
	// environment.
	Executable string
	Args       []string
	// Handover is what this process inherited from the gatehouse that
	// upgraded to it; nil for a gatehouse started on its own.
	Handover *handover.Inherited
	// Activated are the listening sockets systemd passed (socket
	// activation: see ActivatedSockets); New takes them over, and binds
	// the listeners they are not.
	Activated []*os.File
	// UpgradeTimeout bounds how long a successor has to become ready
	// before the upgrade is abandoned; 0 means 60s.
	UpgradeTimeout time.Duration
	// AdoptTimeout bounds how long this process, an upgrade's successor,
	// takes to adopt its predecessor's instances: the predecessor's
	// own wait for it (UpgradeTimeoutEnv); 0 means UpgradeTimeout.
	AdoptTimeout time.Duration
	// Notify tells systemd when gatehouse is ready, reloading and
	// stopping, and keeps its watchdog; nil means not under systemd.
	Notify *sdnotify.Notifier
	// Drained starts the server out of rotation, as gatehouse drain
	// leaves it: the successor of an upgrade of a drained gatehouse.
	Drained bool
	// Override, if set, is what the command line changes in the config
	// (--listen, --admin), already applied to it: a reload applies it to
	// the file it re-reads too, so that it is not taken for a change. Its
	// error (the flags clash with what the file now says) refuses the
	// reload.
	Override func(*config.Config) error
}

// Server is one gatehouse instance: gateway, supervisor and admin API.
type Server struct {
	cfg    *config.Config
	log    *slog.Logger
	events *telemetry.Events
	lines  *telemetry.Lines
	// recent keeps the instances' last lines for GET /api/logs, observed
	// from New on so that no first line is missed.
	recent  *admin.RecentLines
	eventsW *telemetry.AsyncWriter
	accessW *telemetry.AsyncWriter
	sup     *supervisor.Supervisor
	gw      *gateway.Gateway
	metrics *metrics.Metrics
	healer  *autoheal.Healer
	// dumper takes and keeps the process dumps (data_dir/dumps).
	dumper *dumps.Dumper
	scaler *autoscale.Scaler
	// alerts is nil without an alerts: block.
	alerts *alerts.Manager
	// tracer exports the requests' spans; nil without tracing.
	tracer   *tracing.Provider
	publicLn net.Listener
	adminLn  net.Listener
	// The listening sockets themselves, unwrapped, to hand over.
	rawPublic, rawTLS, rawAdmin net.Listener
	upgrade                     *upgradeState
	public                      *front.Server
	// With a tls: block: the HTTPS listener and server, and the
	// certificates they serve.
	tlsLn    net.Listener
	secure   *front.Server
	certs    *certs.Manager
	adminSrv *http.Server
	// snapMu serialises snapshot writes (the loop and Diagnose), so that
	// the one taken last is the one left.
	snapMu sync.Mutex
	// history is the last hour the dashboard charts.
	history  *history.Recorder
	notify   *sdnotify.Notifier
	override func(*config.Config) error
	// draining: out of rotation, /readyz fails (Drain, or stopping);
	// stopping: the shutdown began, and Drain can no longer undo it.
	// Read without a lock; changed under rotMu (see leaveRotation).
	draining, stopping atomic.Bool
	rotMu              sync.Mutex
	// hurry closes on Hurry: the rest of shutdown_delay is skipped.
	hurry     chan struct{}
	hurryOnce sync.Once
	// dataLock keeps other gatehouses off data_dir while this one runs.
	dataLock *dataDirLock
}

// errStopping refuses an operation that a shutdown under way overrides.
var errStopping = errors.New("gatehouse is stopping")

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
	lock, err := lockDataDir(cfg.DataDir, opts.Handover, opts.Logger)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: opts.Logger, notify: opts.Notify, upgrade: newUpgradeState(opts), override: opts.Override,
		hurry: make(chan struct{}), dataLock: lock}
	if s.tracer, err = tracing.New(cfg.Tracing, tracing.Options{Logger: opts.Logger}); err != nil {
		s.dataLock.release()
		return nil, err
	}
	s.eventsW = telemetry.NewAsyncWriter(filepath.Join(cfg.DataDir, "events.log"), telemetry.WriterOptions{})
	s.accessW = newAccessWriter(cfg, opts.Console)
	s.events = telemetry.NewEvents(s.eventsW, 0)
	s.lines = telemetry.NewLines()
	s.recent = admin.NewRecentLines(0)
	s.lines.Observe(s.recent.Add)
	s.sup = supervisor.New(cfg, supervisor.Options{
		Events: s.events, Lines: s.lines, DataDir: cfg.DataDir, LogFiles: instanceLogFiles(cfg), Console: opts.Console, Logger: opts.Logger,
		SampleInterval: cfg.SampleInterval.D(), Successor: opts.Handover != nil,
		ProbeResult:         func(app, id string, r probe.Result) { s.metrics.ObserveProbe(app, id, r) },
		ExplainPortMismatch: explainPortMismatch,
	})
	s.metrics = metrics.New(s.sup)
	s.events.Observe(s.metrics.ObserveEvent)
	s.dumper = s.newDumper(cfg)
	s.healer = autoheal.New(s.sup, s.dumper, s.events, cfg.SampleInterval.D(), opts.Logger)
	s.scaler = autoscale.New(s.sup, autoscale.Options{Events: s.events, Logger: opts.Logger, Decided: s.metrics.ObserveAutoscale})
	s.newAlerts()
	s.history = history.New(s.sup, history.SelfUsage())
	observe := func(e *telemetry.AccessEntry) {
		s.metrics.ObserveRequest(e)
		s.history.Observe(e)
		s.healer.Observe(e)
		s.scaler.Observe(e)
		if s.alerts != nil {
			s.alerts.Observe(e)
		}
		if opts.Observe != nil {
			opts.Observe(e)
		}
	}
	s.gw = gateway.New(cfg, s.sup.Pools(), gateway.Options{
		Access:   telemetry.NewAccessLog(s.accessW),
		Observe:  observe,
		ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		Logger:   opts.Logger,
		Tracer:   s.gatewayTracer(),
	})
	if err := s.gw.Err(); err != nil {
		s.gw.Close()
		s.closeLogs()
		s.dataLock.release()
		return nil, err
	}
	if err := s.listen(opts, opts.Activated); err != nil {
		s.closeLogs()
		s.dataLock.release()
		return nil, err
	}
	errLog := slog.NewLogLogger(opts.Logger.Handler(), slog.LevelError)
	plain := FrontOptions(cfg, errLog)
	plain.H2C = cfg.H2C
	handler := s.withHealth(s.gw)
	if cfg.TLS != nil {
		s.metrics.SetCertificates(s.certificates)
		handler = s.withHealth(newPlainHandler(s.gw, s.certs, cfg.TLS))
		secure := FrontOptions(cfg, errLog)
		secure.TLS = edgeTLS(s.certs.TLSConfig(), cfg.TLS)
		secure.HSTS = hstsValue(cfg.TLS)
		s.secure = front.New(s.withHealth(s.gw), secure)
	}
	s.public = front.New(handler, plain)
	s.metrics.SetFront(s.frontCounts)
	if s.tracer != nil {
		s.metrics.SetTraces(s.traceCounts)
	}
	if opts.Drained {
		s.draining.Store(true)
		s.setLameDuck(true)
	}
	s.adminSrv = &http.Server{
		Handler: admin.NewHandler(admin.Deps{
			Supervisor: s.sup, Events: s.events, Writers: s.writerStats, Ops: s, Metrics: s.metrics.Handler(),
			Lines: s.lines, Recent: s.recent, Diagnose: s.Diagnose, Config: cfg, DataDir: cfg.DataDir, Token: token,
			Certificates: s.certStatus(), Health: s, History: s.history, Alerts: s.firingAlerts(), Dumps: s.dumper,
			HandedOver: s.upgrade.handedOver,
		}),
	}
	boundAdmin(s.adminSrv, cfg.Limits)
	return s, nil
}

// listen binds the listeners, or takes the sockets systemd passed for
// them, and then, when there is a tls: block, makes the certificate
// manager (whose ACME solvers answer on them); on failure nothing is left
// open.
func (s *Server) listen(opts Options, passed []*os.File) error {
	cfg := s.cfg
	var lns []net.Listener
	act, err := matchActivated(passed, cfg, s.log)
	if err != nil {
		return err
	}
	bind := func(what, addr string) net.Listener {
		if err != nil {
			return nil
		}
		// A successor serves on the sockets its predecessor bound for the
		// same address: not one connection is refused between the two.
		ln, ok, ierr := s.upgrade.inherited(what, addr)
		if err = ierr; err != nil || ok {
			lns = append(lns, ln)
			return ln
		}
		if ln, ok := act.take(what); ok {
			lns = append(lns, ln)
			return ln
		}
		if ln, err = net.Listen("tcp", addr); err != nil {
			err = fmt.Errorf("%s on %s: %w%s", what, addr, err, heldBy(addr, err))
			return nil
		}
		lns = append(lns, ln)
		return ln
	}
	s.publicLn = bind("listen", cfg.Listen)
	if cfg.TLS != nil {
		s.tlsLn = bind("tls listen", cfg.TLS.Listen)
	}
	s.rawPublic, s.rawTLS = s.publicLn, s.tlsLn
	if err == nil {
		// The PROXY header comes before anything else, TLS included:
		// the front's handshake reads through it.
		s.publicLn = trust.ProxyProtocol(s.publicLn, cfg)
		if s.tlsLn != nil {
			s.tlsLn = trust.ProxyProtocol(s.tlsLn, cfg)
		}
	}
	s.adminLn = bind("admin listen", cfg.Admin)
	s.rawAdmin = s.adminLn
	s.upgrade.closeInherited()
	act.close()
	if err == nil && cfg.TLS != nil {
		// Its errors name the tls: key already.
		s.certs, err = certs.New(cfg.TLS, certs.Options{
			Events: s.events, Logger: s.log, DataDir: cfg.DataDir, RenewCheckInterval: opts.CertRenewCheck, IgnoreARI: opts.CertIgnoreARI,
			HTTPAddr: s.publicLn.Addr().String(), TLSAddr: s.tlsLn.Addr().String(),
		})
	}
	if err != nil {
		for _, ln := range lns {
			if ln != nil {
				ln.Close()
			}
		}
	}
	return err
}

// certStatus is the admin API's view of the certificates; nil without a
// tls: block.
func (s *Server) certStatus() func() []certs.Status {
	if s.certs == nil {
		return nil
	}
	return s.certs.Status
}

// certificates converts the manager's status for the metrics.
func (s *Server) certificates() []metrics.Certificate {
	var out []metrics.Certificate
	for _, st := range s.certs.Status() {
		if len(st.Names) > 0 && !st.NotAfter.IsZero() {
			out = append(out, metrics.Certificate{Name: st.Names[0], NotAfter: st.NotAfter})
		}
	}
	return out
}

// FrontOptions are the public server's limits from cfg.
func FrontOptions(cfg *config.Config, errLog *log.Logger) front.Options {
	l := cfg.Limits
	return front.Options{
		HeadTimeout: l.HeadTimeout.D(), KeepaliveTimeout: l.KeepaliveTimeout.D(), BodyTimeout: l.BodyTimeout.D(),
		SendTimeout: l.SendTimeout.D(), ConnectionBuffer: int64(l.ConnectionBuffer),
		HeadLimit: int(l.RequestHead), MaxConnections: cfg.MaxConnections(), ErrorLog: errLog,
		MaxConnectionsPerIP: cfg.MaxConnectionsPerIP(), Exempt: trust.New(cfg.TrustedPrefixes()).Contains,
	}
}

// frontCounts sums the listeners' counts for /metrics.
func (s *Server) frontCounts() metrics.FrontCounts {
	n := metrics.FrontCounts{BufferedBytes: s.gw.BufferedBytes()}
	for _, f := range []*front.Server{s.public, s.secure} {
		if f != nil {
			n.H2Floods += f.H2FloodsEnded()
			n.H2RapidResets += f.H2RapidResetsEnded()
			n.TLSHandshakeErrors += f.TLSHandshakeErrors()
		}
	}
	return n
}

// adminToken is the admin API's token: GATEHOUSE_ADMIN_TOKEN, else
// admin_token. An admin listener off loopback without one would hand
// process control and secrets to the network, so it refuses to start.
func adminToken(cfg *config.Config) (string, error) {
	token := os.Getenv("GATEHOUSE_ADMIN_TOKEN")
	if token == "" {
		token = cfg.AdminToken
	}
	if token == "" && !config.LoopbackOnly(cfg.Admin) {
		return "", fmt.Errorf("admin %q is not a loopback address: set admin_token in the config or GATEHOUSE_ADMIN_TOKEN, or bind admin to 127.0.0.1", cfg.Admin)
	}
	return token, nil
}

// Addr is the public listener's address.
func (s *Server) Addr() string { return s.publicLn.Addr().String() }

// TLSAddr is the HTTPS listener's address; "" without a tls: block.
func (s *Server) TLSAddr() string {
	if s.tlsLn == nil {
		return ""
	}
	return s.tlsLn.Addr().String()
}

// Certificates is the HTTPS listener's certificate manager; nil without a
// tls: block.
func (s *Server) Certificates() *certs.Manager { return s.certs }

// AdminAddr is the admin listener's address.
func (s *Server) AdminAddr() string { return s.adminLn.Addr().String() }

// Supervisor is the server's supervisor.
func (s *Server) Supervisor() *supervisor.Supervisor { return s.sup }

// Events is the server's event log.
func (s *Server) Events() *telemetry.Events { return s.events }

// component is one long-running part of the server: a goroutine that
// returns when its stop step of the shutdown sequence runs, or on its own
// when it fails.
type component struct {
	name string
	done chan struct{}
	err  error
}

// start runs f in a goroutine as the component name; when f returns, the
// component is sent on exited (which has room for every component).
func start(name string, exited chan<- *component, f func() error) *component {
	c := &component{name: name, done: make(chan struct{})}
	go func() {
		c.err = f()
		close(c.done)
		exited <- c
	}()
	return c
}

// wait waits for the components to return; nil is one never started.
func wait(cs ...*component) {
	for _, c := range cs {
		if c != nil {
			<-c.done
		}
	}
}

// Run serves until ctx ends or a component fails on its own, then runs
// the shutdown sequence (see shutdown) once. It returns nil when ctx
// ended, or else the error of the component that stopped first, named
// after it (a component that returns without an error before it was
// asked to stop is a failure too).
func (s *Server) Run(ctx context.Context) error {
	supCtx, stopSup := context.WithCancel(context.Background())
	defer stopSup()
	loopCtx, stopLoops := context.WithCancel(context.Background())
	defer stopLoops()
	adminCtx, stopAdminHandlers := context.WithCancel(context.Background())
	defer stopAdminHandlers()
	// Long-lived admin handlers (the log stream) end at step 5 rather
	// than being cut off mid-response when the process exits.
	s.adminSrv.BaseContext = func(net.Listener) context.Context { return adminCtx }

	exited := make(chan *component, 16)
	r := &running{
		healer:    start("auto-heal", exited, func() error { return s.healer.Run(loopCtx) }),
		scaler:    start("autoscale", exited, func() error { return s.scaler.Run(loopCtx) }),
		alerts:    s.startAlerts(exited, loopCtx),
		snap:      start("state snapshots", exited, func() error { s.snapshotLoop(loopCtx); return nil }),
		history:   start("dashboard history", exited, func() error { s.history.Run(loopCtx); return nil }),
		memtrim:   start("memory trim", exited, func() error { memtrim.New(memtrim.Options{Busy: s.serving}).Run(loopCtx); return nil }),
		prune:     start("log retention", exited, func() error { s.pruneLogs(loopCtx); return nil }),
		dumps:     start("dump retention", exited, func() error { return s.dumper.Run(loopCtx) }),
		sup:       start("supervisor", exited, func() error { return s.sup.Run(supCtx) }),
		watchdog:  start("systemd watchdog", exited, func() error { s.notify.RunWatchdog(loopCtx, s.adminAnswers); return nil }),
		stopLoops: stopLoops, stopSup: stopSup, stopAdminHandlers: stopAdminHandlers,
	}
	r.tracing = s.startTracing(exited, loopCtx)
	// A successor accepts only once it has adopted its predecessor's
	// instances: until then the predecessor serves alone.
	cause := s.takeOver(ctx)
	if cause == nil {
		r.public = start("public listener", exited, func() error { return serveFront(s.public, s.publicLn) })
		r.secure = s.startTLS(exited, loopCtx)
		r.admin = start("admin listener", exited, func() error { return serve(s.adminSrv, adminListener(s.adminLn)) })
		if s.upgrade.inherit == nil {
			s.notify.Ready() // a successor said it with MAINPID= in takeOver
		}
		select {
		case <-ctx.Done():
			// A stop asked for (SIGTERM): out of rotation first, serving
			// on for shutdown_delay.
			if c := s.beginStop(exited); c != nil {
				cause = s.failed(c)
			}
		case <-s.upgrade.handedOver:
		case c := <-exited:
			cause = s.failed(c)
		}
	}
	s.shutdown(r)
	return cause
}

// failed reports a component that stopped on its own, for Run to return.
func (s *Server) failed(c *component) error {
	s.log.Error("component failed; shutting down", "component", c.name, "err", c.err)
	err := c.err
	if err == nil {
		err = errors.New("stopped unexpectedly")
	}
	return fmt.Errorf("%s: %w", c.name, err)
}

// running holds a running server's components and the cancel funcs that
// stop them.
type running struct {
	public, healer, scaler, alerts, snap, history, memtrim, prune, dumps, sup, admin, watchdog *component
	// secure holds the HTTPS listener and the certificate manager, when
	// there is a tls: block.
	secure                                []*component
	stopLoops, stopSup, stopAdminHandlers context.CancelFunc
	// tracing flushes the spans when the loops stop; nil without
	// tracing.
	tracing *component
}

// shutdown is gatehouse's one shutdown sequence. Run calls it once, both
// when its context ends (SIGTERM, Ctrl-C) and when a component fails on
// its own, so that every way out stops the same things in the same order
// (an upgrade under way is called off first, and systemd is told
// STOPPING=1, unless a successor took over):
//
//  0. Only for a stop asked for (SIGTERM, Ctrl-C; see beginStop, which
//     Run calls before this): /readyz fails at once and every HTTP/1
//     answer closes its connection, while gatehouse serves on for
//     shutdown_delay, so that load balancers stop sending it requests
//     before its listeners close. From here on /readyz fails in every
//     case but a handover (the successor serves: the node stays in
//     rotation).
//  1. Stop accepting on the public listeners (plain and HTTPS): new
//     connections are refused, or, after an upgrade, accepted by the
//     successor, which has the same sockets (and the admin one too).
//  2. Drain in-flight public requests, bounded by the longest stop_timeout
//     of the apps: event streams end cleanly at once (their clients
//     reconnect); HTTP/2 connections are told to go away (GOAWAY) and
//     their open streams finish; after an upgrade, idle keep-alive
//     connections stay open for idleGrace to answer one more request
//     with Connection: close; whatever is still open then is closed.
//  3. Stop the background loops: auto-heal (so it starts no recycle of an
//     instance about to stop), autoscale (so it starts no scale; one
//     under way gives up waiting for its new instances, which step 4
//     stops, or finishes draining its surplus ones), alerts (what is
//     queued for the receivers, resolved notifications say, gets up to
//     2s more to be delivered; the instances stopping in step 4 raise no
//     alert), the state snapshots, the dashboard's history, the memory
//     trim, the log and dump retention, the certificate manager
//     (renewals, file watching) and the systemd watchdog: a stop that
//     outlasts WatchdogSec is bounded by TimeoutStopSec instead. With
//     tracing, the spans still queued are flushed, within
//     tracing.FlushTimeout. (The event counter of the metrics and the
//     instances' recent output are observers of events and lines, from
//     New on: they stop with nothing.)
//  4. Stop the supervisor: every instance is drained, sent SIGTERM, then
//     SIGKILL after its stop_timeout; their stop events are still written.
//     A successor whose predecessor still drains waits for it first,
//     until the bound of step 2's drain: the predecessor's requests in
//     flight are on the same instances, and their drain counts only this
//     process's. After an upgrade, and in a successor that never became
//     ready, the instances are left running instead, for the process that
//     serves; a successor that upgraded in turn still waits for its own
//     predecessor before it exits, since its successor's stop waits for
//     it alone.
//  5. Stop the admin API: long-lived handlers (logs -f) end their
//     responses cleanly, then the listener shuts down, bounded by 1s.
//  6. Close the logs: the access entries still waiting for an exit are
//     written as they are, events.log and access.log flushed and closed.
//
// A step whose component already failed finds nothing left to stop and
// goes on to the next.
func (s *Server) shutdown(r *running) {
	was := s.leaveRotation()
	s.upgrade.end()
	if s.upgrade.done.Load() {
		// Not out of rotation after a handover: the node serves on,
		// through the successor, and a health check kept alive to this
		// process is answered by it once more.
		s.restoreRotation(was)
	}
	leave := s.upgrade.leaving()
	if !leave {
		// Not from a process that handed over, or a successor that never
		// took over: with NotifyAccess=all systemd takes STOPPING=1 from
		// any process of the unit and stops the unit, the process that
		// serves and the apps with it (and one before the successor's
		// MAINPID= makes systemd ignore that too).
		s.notify.Stopping()
	}
	// Steps 1 and 2: Shutdown closes the listener first, then waits for
	// the connections to finish.
	if s.upgrade.done.Load() {
		// The successor answers the admin API now: its connections finish
		// at step 5, but a kept-alive one is closed once idle, or after
		// its answer, rather than being answered by this process, whose
		// supervisor has let go of every instance, until then.
		s.adminLn.Close()
		s.adminSrv.SetKeepAlivesEnabled(false)
	}
	// The predecessor's wait in step 4 ends by the drain's bound too.
	drained := time.Now().Add(s.drainBound())
	s.drainPublic(r.public != nil)
	wait(r.public)
	// Step 3.
	r.stopLoops()
	wait(r.healer, r.scaler, r.alerts, r.snap, r.history, r.memtrim, r.prune, r.dumps, r.watchdog)
	wait(r.secure...)
	wait(r.tracing)
	// Step 4.
	if leave {
		s.sup.Leave()
	}
	if !leave || s.upgrade.done.Load() {
		s.awaitPredecessor(drained)
	}
	r.stopSup()
	wait(r.sup)
	// Step 5.
	r.stopAdminHandlers()
	c, cancel := context.WithTimeout(context.Background(), time.Second)
	if err := s.adminSrv.Shutdown(c); err != nil {
		s.adminSrv.Close()
	}
	cancel()
	wait(r.admin)
	// Step 6.
	s.closeLogs()
	s.dataLock.release()
}

// drainPublic stops accepting and waits for in-flight requests, bounded
// by the longest stop_timeout; served says the fronts were serving (a
// successor that never became ready only closes its sockets).
func (s *Server) drainPublic(served bool) {
	if !served {
		for _, ln := range []net.Listener{s.publicLn, s.tlsLn} {
			if ln != nil {
				ln.Close()
			}
		}
		return
	}
	s.gw.EndStreams()
	grace := time.Duration(0)
	if s.upgrade.done.Load() {
		grace = idleGrace
	}
	c, cancel := context.WithTimeout(context.Background(), s.drainBound())
	defer cancel()
	var wg sync.WaitGroup
	for _, f := range []*front.Server{s.public, s.secure} {
		if f == nil {
			continue
		}
		wg.Go(func() {
			if err := f.ShutdownIdleGrace(c, grace); err != nil {
				f.Close()
			}
			f.CloseTunnels()
		})
	}
	wg.Wait()
}

// awaitPredecessor waits, until deadline, for the gatehouse this one
// took over from to exit: a stop soon after an upgrade would otherwise
// stop the instances under the requests the predecessor still serves.
// The deadline is the drain's (step 2): the predecessor's requests came
// before this stop, and its own drain, begun before too, ends them within
// the longest stop_timeout, so that a longer wait would protect none and
// only push the stop past the time systemd or Kubernetes allow it. A gatehouse that handed over in turn waits
// too, before it exits: its successor knows of it alone, and waits for
// it, so that two upgrades in a row followed by a stop still let the
// first old process finish. Nothing to wait for in a gatehouse started
// on its own.
func (s *Server) awaitPredecessor(deadline time.Time) {
	in := s.upgrade.inherit
	if in == nil || !in.OldRunning() {
		return
	}
	d := max(time.Until(deadline), 0).Round(time.Millisecond)
	what, gaveUp := "stopping the apps", "stopping the apps under its requests"
	if s.upgrade.done.Load() {
		what, gaveUp = "exiting (the new gatehouse waits for this one)", "exiting"
	}
	s.log.Info("waiting for the previous gatehouse to finish its requests before "+what, "previous_pid", in.Parent(), "at_most", d)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if in.AwaitOldGone(ctx) != nil {
		s.log.Warn("the previous gatehouse still runs; "+gaveUp, "previous_pid", in.Parent())
	}
}

// drainBound is the longest stop_timeout of the apps as they run now: a
// reload changes an app's without a new process.
func (s *Server) drainBound() time.Duration {
	var d time.Duration
	for _, a := range s.sup.Apps() {
		d = max(d, a.Config().StopTimeout.D())
	}
	return d
}

// startTLS starts the HTTPS listener and the certificate manager, when
// there is a tls: block. The listener stops in the sequence's steps 1 and
// 2 (drainPublic), the manager with the loops in step 3.
func (s *Server) startTLS(exited chan<- *component, loopCtx context.Context) []*component {
	if s.secure == nil {
		return nil
	}
	return []*component{
		start("https listener", exited, func() error { return serveFront(s.secure, s.tlsLn) }),
		start("certificates", exited, func() error { return s.certs.Run(loopCtx) }),
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
	s.stopTracing()
	s.gw.Close()
	s.accessW.Close()
	s.eventsW.Close()
}

// serving reports whether requests were served in the last few seconds
// (more than one a second, on average), as the dashboard's history
// counted them: the memory trim waits for quiet.
func (s *Server) serving() bool {
	var n uint32
	for _, p := range s.history.Window(history.Overall, memtrim.DefaultQuiet) {
		n += p.Requests
	}
	return n > uint32(memtrim.DefaultQuiet/time.Second)
}

// firingAlerts lists the alerts firing now for the dashboard; nil when
// there is no alerts: block.
func (s *Server) firingAlerts() func() []admin.FiringAlert {
	if s.alerts == nil {
		return nil
	}
	return func() []admin.FiringAlert {
		var out []admin.FiringAlert
		for _, f := range s.alerts.Firing() {
			if f.Firing > 0 {
				out = append(out, admin.FiringAlert{Alert: f.Alert, App: f.App, Firing: f.Firing})
			}
		}
		return out
	}
}

// newAlerts makes the alerts manager, when there is an alerts: block,
// with its gauge and counter in the metrics.
func (s *Server) newAlerts() {
	if s.cfg.Alerts == nil {
		return
	}
	s.alerts = alerts.New(s.cfg.Alerts, s.sup, s.events, alerts.Options{Logger: s.log, Notified: s.metrics.ObserveNotification})
	s.metrics.SetAlerts(func() []metrics.AlertCount {
		var out []metrics.AlertCount
		for _, f := range s.alerts.Firing() {
			out = append(out, metrics.AlertCount{Alert: f.Alert, App: f.App, Firing: f.Firing})
		}
		return out
	})
}

// startAlerts starts the alerts manager, when there is one; it stops with
// the loops in step 3.
func (s *Server) startAlerts(exited chan<- *component, loopCtx context.Context) *component {
	if s.alerts == nil {
		return nil
	}
	return start("alerts", exited, func() error { return s.alerts.Run(loopCtx) })
}

func (s *Server) writerStats() map[string]telemetry.WriterStats {
	return map[string]telemetry.WriterStats{"access.log": s.accessW.Stats(), "events.log": s.eventsW.Stats()}
}
