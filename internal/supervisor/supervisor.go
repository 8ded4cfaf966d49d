package supervisor

import (
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/adoption"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/instance"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/portcheck"
	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/process"
	"github.com/gatehouse/gatehouse/internal/procstat"
	"github.com/gatehouse/gatehouse/internal/sampling"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Options are the supervisor's collaborators.
type Options struct {
	// Events receives lifecycle events. Required.
	Events *telemetry.Events
	// Lines, if set, receives every line of instance output (the log
	// stream).
	Lines *telemetry.Lines
	// DataDir holds logs/APP/INSTANCE.log, rotated as LogFiles says.
	DataDir  string
	LogFiles process.FileOptions
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
	// ExplainPortMismatch, if set, words a port mismatch found while an
	// instance starts (what its process does, and the fix), which the
	// supervisor then reports as a port_mismatch event and in its
	// instance's note; without it, starting instances are not checked
	// for one.
	ExplainPortMismatch func(PortMismatch) (what, fix string)
	// Successor: this gatehouse was started by an upgrade, and the
	// gatehouse that started it (alive, its parent) has left its
	// processes to it to adopt.
	Successor bool
}

// PortMismatch is a starting process that ignores its PORT (see package
// portcheck).
type PortMismatch = portcheck.Mismatch

// Supervisor owns every app's processes.
type Supervisor struct {
	opts    Options
	prober  *probe.Prober
	reader  procstat.Reader
	sampler *sampling.Sampler
	ports   *instance.Ports
	console *process.Console
	// lines is Options.Lines; nil (not a nil pointer) without one.
	lines process.Lines
	// records is data_dir/processes.json; nil without a data_dir.
	records     *adoption.Records
	statusFiles *adoption.StatusFiles

	// leaving is set from Leave until TakeBack: the processes belong to
	// a successor, and no instance is started.
	leaving atomic.Bool
	// begun is closed once Run has adopted and started the instances.
	begun chan struct{}
	// adopting counts the adopted instances not yet checked.
	adopting countdown

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
		opts:        opts,
		prober:      probe.New(),
		reader:      procstat.NewReader(),
		begun:       make(chan struct{}),
		ports:       instance.NewPorts(),
		console:     process.NewConsole(opts.Console),
		apps:        map[string]*App{},
		statusFiles: adoption.NewStatusFiles(opts.DataDir, opts.Logger),
	}
	s.records = adoption.New(opts.DataDir, opts.Logger, s.appRecords)
	s.sampler = sampling.New(s.reader, s.sampleTargets)
	if opts.Lines != nil {
		s.lines = opts.Lines
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
	// The gatehouse that upgraded to this one, or one that was killed
	// hard, left its apps running: adopt those this config still runs,
	// stop the others, then start what is missing.
	mode := adoption.Fresh
	if s.opts.Successor {
		mode = adoption.FromParent
	}
	adopt, apps := s.records.TakeOver(s.opts.Events, mode, s.adoptable)
	s.records.Reset(adopt)
	s.records.Claim()
	s.statusFiles.Sweep(s.records, adopt)
	for _, a := range s.Apps() {
		var st *adoption.AppRecord
		if rec, ok := apps[a.name]; ok {
			st = &rec
		}
		a.begin(ictx, adopt[a.name], st)
	}
	close(s.begun)
	every := s.opts.SampleInterval
	if every <= 0 {
		every = 5 * time.Second
	}
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		s.sampler.Run(ctx, every)
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
	if !s.leaving.Load() {
		// Not after a handover: the record is the successor's by now.
		s.records.StoppedCleanly()
	}
	return nil
}

// adoptable reports whether rec is a process this gatehouse adopts: one
// started under a shim, for an app of this config that runs processes,
// with the command the config gives it. The shim may have ended since:
// the adopted instance then reports how its process ended and restarts.
func (s *Supervisor) adoptable(rec adoption.ProcessRecord) bool {
	if rec.ShimPID <= 1 || rec.StatusFile == "" {
		return false
	}
	// It must name an app process that leads its own group, as
	// adoption requires of a leftover: the group gets signals as
	// -PID, and kill(-0) is this gatehouse's own group, kill(-1) every
	// process it may signal.
	if rec.PID <= 1 || rec.PGID != rec.PID || rec.StartTicks == 0 {
		return false
	}
	a := s.App(rec.App)
	if a == nil {
		return false
	}
	cfg := a.Config()
	return !cfg.External() && slices.Equal(process.CommandArgv(cfg.Command), rec.Command)
}

// AwaitAdopted returns once every instance adopted so far has been
// checked (its first probe ran, or its process had ended), or with ctx's
// error. A successor gatehouse calls it before it says it is ready.
func (s *Supervisor) AwaitAdopted(ctx context.Context) error {
	select {
	case <-s.begun:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.adopting.wait(ctx)
}

// countdown is a count that can be waited for to reach zero.
type countdown struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed while n is 0; nil means closed
}

func (c *countdown) add() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == 0 {
		c.zero = make(chan struct{})
	}
	c.n++
}

func (c *countdown) done() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n--
	if c.n == 0 {
		close(c.zero)
	}
}

func (c *countdown) wait(ctx context.Context) error {
	c.mu.Lock()
	zero := c.zero
	c.mu.Unlock()
	if zero == nil {
		return nil
	}
	select {
	case <-zero:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// CanLeave says why the instances cannot be left to a successor, which
// finds them through data_dir/processes.json: when that record does not
// list them (it cannot be written, or another gatehouse owns it), a left
// process would run on unsupervised. nil when they can.
func (s *Supervisor) CanLeave() error { return s.records.HandoverErr() }

// Leave stops supervising every instance without stopping any process,
// for a successor gatehouse to adopt them: each instance's output is no
// longer read and its process no longer watched or probed, its record is
// kept, and its member stays in the pool, so that the requests this
// gatehouse still serves reach it. Until TakeBack no instance is started:
// operations that would start one fail. It returns once every instance
// has let go.
func (s *Supervisor) Leave() {
	if s.leaving.Swap(true) {
		// Left already (the shutdown after a handover asks again): the
		// record is the successor's by now, and must not be written.
		return
	}
	var wg sync.WaitGroup
	for _, a := range s.Apps() {
		wg.Go(a.leave)
	}
	wg.Wait()
	// The apps' latest state (a scale, a stop, an unload) for the
	// successor, which goes by the record.
	s.records.Claim()
}

// appRecords is every app's state for processes.json.
func (s *Supervisor) appRecords() map[string]adoption.AppRecord {
	out := map[string]adoption.AppRecord{}
	for _, a := range s.Apps() {
		out[a.name] = adoption.AppRecord{Instances: a.Config().Instances, Resume: int(a.resume.Load()), Unloaded: a.pool.Unloaded(),
			Configured: int(a.configured.Load())}
	}
	return out
}

// TakeBack adopts again what Leave left, after the successor failed: the
// processes as the record now has them (the successor may have restarted
// some), and starts what is missing. The members Leave kept leave the
// pools once the adopted ones are in.
func (s *Supervisor) TakeBack() {
	adopt, _ := s.records.TakeOver(s.opts.Events, adoption.Back, s.adoptable)
	s.leaving.Store(false)
	// What this gatehouse recorded before Leave is stale: the successor
	// may have stopped or replaced any of it.
	s.records.Reset(adopt)
	s.records.Claim()
	for _, a := range s.Apps() {
		a.takeBack(adopt[a.name])
	}
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
		case "PORT", "WEBSITES_PORT", "GATEHOUSE_APP", "GATEHOUSE_INSTANCE", "GATEHOUSE_ADMIN_TOKEN", adoption.RunEnv,
			// systemd's, for gatehouse: an app acting on them would speak for the service.
			"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES":
			continue
		}
		env = append(env, kv)
	}
	return env
}
