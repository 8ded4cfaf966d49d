package instance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/adoption"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/portcheck"
	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/process"
	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/sampling"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Instance is one supervised process slot with a stable id. A crash
// restarts it under the same id; a replacement gets a new id.
type Instance struct {
	ID  string
	app *Host
	out *process.Output
	// upstream is the address of an external upstream; empty for a
	// supervised process.
	upstream string
	// source is the dns:// or dns+srv:// entry an upstream was found by;
	// empty for a static one. Guarded by mu once started: the entry that
	// wants an address may change.
	source string
	// spec is the config the instance's processes are started with: a
	// reload gives new instances a new spec while old ones keep theirs.
	spec *config.App
	// restart asks for an immediate hard restart under the same id.
	restart chan struct{}
	// adopt, until the first process runs, is the process a previous
	// gatehouse left to this one to adopt instead of starting one.
	adopt *adoption.ProcessRecord
	// checked, for an adopted instance, counts it as checked (its first
	// probe ran, or it ended) for Supervisor.AwaitAdopted.
	checked func()

	mu        sync.Mutex
	state     pool.State
	pid       int
	port      int
	health    string
	restarts  int
	startedAt time.Time
	readyAt   time.Time
	member    *pool.Member
	// unhealthySince is when failed probes took the instance out of
	// rotation; zero while it is in any other state.
	unhealthySince time.Time

	// cannotStart is why the command's program cannot be run, while the
	// instance waits for a restart or a stop; "" otherwise. Guarded by mu.
	cannotStart string

	samples  sampling.Slot
	stopOnce sync.Once
	stopping atomic.Bool
	stopMode StopMode
	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
}

// StopMode says how an instance is stopped.
type StopMode int

const (
	// Drain: out of rotation, in-flight requests finish, then signals.
	Drain StopMode = iota
	// Hard: signals at once (gatehouse restart).
	Hard
	// Leave: no signal; the process is left running, with its member in
	// the pool, for a successor gatehouse to adopt (an upgrade).
	Leave
)

// outcome is how one process incarnation ended.
type outcome int

const (
	crashed outcome = iota
	stopped
	restarted
	// left: left running for a successor (Leave).
	left
	// unrunnable: the command's program is missing or not executable,
	// or its dir cannot be entered; starting it again cannot help, so it
	// is not restarted until asked.
	unrunnable
)

// Setup is what an instance starts with beyond its app's config.
type Setup struct {
	// Upstream is the address of an external upstream, Source the DNS
	// entry that found it; empty for a supervised process.
	Upstream, Source string
	// Adopt is the process a previous gatehouse left to this instance,
	// Restarts its restart count so far, and Checked (for
	// Supervisor.AwaitAdopted) is called once its first probe ran or it
	// ended.
	Adopt    *adoption.ProcessRecord
	Restarts int
	Checked  func()
}

// New is instance number n of h's app, running spec; it lives on a
// context of its own under parent, which Stop cancels. Start runs it.
func New(parent context.Context, h *Host, n int, spec *config.App, o Setup) *Instance {
	id := h.App + "-" + strconv.Itoa(n)
	logPath := filepath.Join(h.DataDir, "logs", h.App, id+".log")
	in := &Instance{
		ID:       id,
		app:      h,
		spec:     spec,
		out:      process.NewOutput(h.App, id, logPath, h.LogFiles, h.Console, h.Lines),
		state:    pool.Starting,
		restart:  make(chan struct{}, 1),
		done:     make(chan struct{}),
		upstream: o.Upstream,
		source:   o.Source,
		adopt:    o.Adopt,
		restarts: o.Restarts,
		checked:  o.Checked,
	}
	in.ctx, in.cancel = context.WithCancel(parent)
	return in
}

// Restart asks for a hard restart: the process is stopped at once, without
// draining, and started again under the same id with no back-off.
func (in *Instance) Restart() {
	select {
	case in.restart <- struct{}{}:
	default:
	}
}

// Start runs the instance's lifecycle in a goroutine owned by its app,
// which has counted it: release is called as it ends, after forget (the
// app drops it from its list) and before Done is closed.
func (in *Instance) Start(forget func(*Instance), release func()) {
	ctx := in.ctx
	go func() {
		defer release()
		defer close(in.done)
		defer in.out.Close()
		defer forget(in)
		if in.upstream != "" {
			in.runUpstream(ctx)
			return
		}
		in.run(ctx)
	}()
}

// Stop asks the instance to stop and returns at once; Done tells when.
func (in *Instance) Stop(mode StopMode) {
	in.stopOnce.Do(func() {
		in.stopping.Store(true)
		in.mu.Lock()
		in.stopMode = mode
		in.mu.Unlock()
		in.cancel()
	})
}

// Stopping reports whether the instance is being stopped for good
// (drained by a recycle, reload, scale, idle unload or shutdown).
func (in *Instance) Stopping() bool { return in.stopping.Load() }

// Done is closed when the instance has stopped for good.
func (in *Instance) Done() <-chan struct{} { return in.done }

func (in *Instance) run(ctx context.Context) {
	// However it ends, a stopped instance holds no request up.
	defer in.clearCannotStart()
	var bo backoff
	for {
		start := time.Now()
		out := in.runOnce(ctx)
		if out == left {
			return // the member stays as it is, serving
		}
		if out == stopped || ctx.Err() != nil {
			in.setState(pool.Stopped)
			return
		}
		if out == unrunnable {
			// No back-off loop: it stays crashed, and held requests get
			// their 503 at once, until a restart (after a fix) or a stop.
			if !in.awaitRestart(ctx) {
				in.setState(pool.Stopped)
				return
			}
			continue
		}
		in.mu.Lock()
		upFor := time.Duration(0)
		if !in.readyAt.IsZero() {
			upFor = time.Since(in.readyAt)
		}
		in.restarts++
		n := in.restarts
		in.mu.Unlock()
		var delay time.Duration
		detail := fmt.Sprintf("restart #%d on request", n)
		if out == crashed {
			delay = bo.next(upFor)
			detail = fmt.Sprintf("restart #%d after %s back-off (last run lasted %s)", n, delay, time.Since(start).Round(time.Millisecond))
		}
		in.emit(telemetry.Event{Type: telemetry.EventRestart, Detail: detail})
		if !in.backOff(ctx, delay) {
			in.setState(pool.Stopped)
			return
		}
	}
}

// backOff waits d before the next start; false when the instance was
// stopped meanwhile. A restart asked for while no process runs (during
// the back-off, or as the last one exited) ends the wait at once and
// counts as a restart of its own, so that it is not left pending to
// hard-stop the next process, and whoever asked sees the count move.
func (in *Instance) backOff(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	if d <= 0 {
		select {
		case <-in.restart:
			in.restartRequested()
		default:
		}
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-in.restart:
		in.restartRequested()
		return true
	case <-t.C:
		return true
	}
}

// awaitRestart waits, with no process, for a restart to be asked for
// (true) or the instance to be stopped (false).
func (in *Instance) awaitRestart(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-in.restart:
		// Cleared before the restart counts: whoever waits for it to
		// become ready must not see this start's failure as the next's.
		in.clearCannotStart()
		in.restartRequested()
		return true
	}
}

// clearCannotStart forgets that the command cannot be run, in the pool
// too, so that the app's requests are held again.
func (in *Instance) clearCannotStart() {
	in.mu.Lock()
	was := in.cannotStart
	in.cannotStart = ""
	in.mu.Unlock()
	if was != "" {
		in.app.Pool.SetCannotStart(in.ID, "")
	}
}

func (in *Instance) restartRequested() {
	// No longer crashed: an operation waiting for the restart must not
	// take the instance for one that keeps failing.
	in.setState(pool.Starting)
	in.mu.Lock()
	in.restarts++
	n := in.restarts
	in.mu.Unlock()
	in.emit(telemetry.Event{Type: telemetry.EventRestart, Detail: fmt.Sprintf("restart #%d on request", n)})
}

// runOnce starts one process and supervises it until it exits or the
// instance is stopped.
func (in *Instance) runOnce(ctx context.Context) outcome {
	cfg := in.effective()
	// The previous process's member (crashed, or drained by a hard
	// restart) has left the pool; the instance starts again without it.
	// Its readiness goes with it: a start that fails before a process
	// runs must not count as a run that stayed up since that readiness,
	// which would reset the back-off at every failed start.
	in.mu.Lock()
	in.member, in.readyAt = nil, time.Time{}
	in.mu.Unlock()
	in.setState(pool.Starting)
	proc, port, argv, err := in.startOrAdopt(cfg)
	if err != nil {
		if process.CannotRun(err) {
			return unrunnable
		}
		return crashed
	}
	in.mu.Lock()
	restarts := in.restarts
	in.mu.Unlock()
	rec := in.app.Records
	rec.Started(adoption.ProcessRecord{App: in.app.App, ID: in.ID, PID: proc.PID(), PGID: proc.PID(), StartTicks: proc.StartTicks(),
		Port: port, Restarts: restarts, StartedAt: proc.Started(), Command: argv,
		ShimPID: proc.Shim().PID, ShimStartTicks: proc.Shim().StartTicks, StatusFile: proc.StatusPath()})
	keepRecord := false
	defer func() {
		if !keepRecord {
			rec.Exited(in.app.App, in.ID, proc.PID())
		}
	}()
	m := pool.NewMember(in.ID, "127.0.0.1:"+strconv.Itoa(port))
	m.SetPID(proc.PID())
	in.mu.Lock()
	in.pid, in.port, in.member, in.startedAt, in.readyAt = proc.PID(), port, m, proc.Started(), time.Time{}
	in.health = "starting"
	in.mu.Unlock()
	in.app.Pool.Add(m)
	in.setState(pool.Starting)
	if proc.Adopted() {
		in.emit(telemetry.Event{Type: telemetry.EventAdopt, PID: proc.PID(),
			Detail: fmt.Sprintf("adopted without a restart: %s on PORT=%d, running since %s",
				argv[0], port, proc.Started().Local().Format(time.RFC3339))})
	} else {
		in.emit(telemetry.Event{Type: telemetry.EventStart, PID: proc.PID(),
			Detail: fmt.Sprintf("started %s with PORT=%d", argv[0], port)})
	}
	out := in.supervise(ctx, proc, m, cfg)
	keepRecord = out == left
	return out
}

// startOrAdopt starts the instance's next process, or adopts the one a
// previous gatehouse left it; the error (reported already) when none
// could be started.
func (in *Instance) startOrAdopt(cfg *config.App) (*process.Process, int, []string, error) {
	out := in.out.Process()
	if rec := in.adopt; rec != nil {
		in.adopt = nil
		in.app.Ports.Reserve(rec.Port)
		run := in.app.Records.Token()
		proc := process.Adopt(process.Adoptee{PID: rec.PID, StartTicks: rec.StartTicks, StatusPath: rec.StatusFile,
			Shim: procid.ID{PID: rec.ShimPID, StartTicks: rec.ShimStartTicks}, StartedAt: rec.StartedAt,
			OwnsGroup: func() bool { return adoption.OwnsGroup(*rec, run) }}, out)
		out.SetPID(proc.PID())
		return proc, rec.Port, rec.Command, nil
	}
	port, err := in.app.Ports.Alloc()
	if err != nil {
		in.failStart(err)
		return nil, 0, nil, err
	}
	argv := process.CommandArgv(cfg.Command)
	run := in.app.Records.Token()
	var proc *process.Process
	// Once the app has ended its group is still its own while a member
	// carries the instance's identity (children it left behind); empty,
	// its id may be another program's group.
	ownsGroup := func() bool {
		return adoption.OwnsGroup(adoption.ProcessRecord{App: in.app.App, ID: in.ID, PID: proc.PID(), PGID: proc.PID(),
			StartTicks: proc.StartTicks()}, run)
	}
	proc, err = process.Spawn(process.Spec{Argv: argv, Dir: cfg.Dir, Env: in.env(cfg, port), Out: out,
		StatusPath: in.app.StatusFiles.Path(in.ID), OwnsGroup: ownsGroup})
	if err != nil {
		in.failStart(err)
		return nil, 0, nil, err
	}
	out.SetPID(proc.PID())
	return proc, port, argv, nil
}

// supervise runs a started or adopted process until it ends or the
// instance stops.
func (in *Instance) supervise(ctx context.Context, proc *process.Process, m *pool.Member, cfg *config.App) outcome {
	switch in.awaitReady(ctx, proc, m, cfg) {
	case readyExited:
		when := "before it became ready"
		if proc.Adopted() && in.State() != pool.Ready {
			when = "while no gatehouse watched it, or as this one adopted it"
		}
		in.onExit(ctx, proc, m, when)
		return crashed
	case readyTimeout:
		in.onStartTimeout(ctx, proc, m, cfg)
		return crashed
	case readyStopped:
		return in.shutdown(proc, m, cfg, in.requestedStop())
	case readyRestart:
		in.shutdown(proc, m, cfg, Hard)
		return restarted
	}
	return in.watch(ctx, proc, m, cfg)
}

func (in *Instance) failStart(err error) {
	in.setState(pool.Crashed)
	detail := "could not start: " + err.Error()
	if process.CannotRun(err) {
		detail += "; " + notRestartedFix
		// Known for certain, with its fix: the 503 of every request
		// held for the app says it, at once.
		in.app.Pool.SetCannotStart(in.ID, in.ID+" "+detail)
	}
	in.mu.Lock()
	in.health = detail
	if process.CannotRun(err) {
		in.cannotStart = detail
	}
	in.mu.Unlock()
	in.emit(telemetry.Event{Type: telemetry.EventExit, Detail: detail})
}

// notRestartedFix ends the detail of a start that failed because the
// command's program or directory cannot be used: what happens next, and
// the fix.
const notRestartedFix = "not restarted: fix the command, dir or the file, then gatehouse restart or reload"

// env is the process environment: gatehouse's own, the app's env:, and
// the instance's port and identity.
func (in *Instance) env(cfg *config.App, port int) []string {
	env := in.app.Environ(cfg.Env)
	p := strconv.Itoa(port)
	env = append(env, "PORT="+p, "WEBSITES_PORT="+p, "GATEHOUSE_APP="+in.app.App, "GATEHOUSE_INSTANCE="+in.ID)
	if run := in.app.Records.Env(); run != "" {
		env = append(env, run) // names this run's processes (see records)
	}
	return env
}

type readiness int

const (
	readyOK readiness = iota
	readyExited
	readyTimeout
	readyStopped
	readyRestart
)

// awaitReady runs the startup check until it passes, the process exits,
// start_timeout passes, or the instance is stopped.
func (in *Instance) awaitReady(ctx context.Context, proc *process.Process, m *pool.Member, cfg *config.App) readiness {
	deadline := time.NewTimer(cfg.StartTimeout.D())
	defer deadline.Stop()
	spec := probe.SpecFor(cfg.Health)
	wait := 50 * time.Millisecond
	mismatch := portcheck.Check{Reader: in.app.Reader, Prober: in.app.Prober, Explain: in.app.ExplainPortMismatch}
	for {
		r := in.probe(ctx, m.Addr, spec)
		if in.checked != nil {
			// Checked once the first probe has run, whatever it said (a
			// once-only call): an adopted instance that does not answer
			// is not the successor's reason to wait; it is started again
			// after start_timeout.
			in.checked()
		}
		if r.OK {
			in.mu.Lock()
			in.health, in.readyAt = r.Detail, time.Now()
			in.mu.Unlock()
			in.setState(pool.Ready)
			in.app.Kick()
			detail := fmt.Sprintf("ready in %s: %s", time.Since(proc.Started()).Round(time.Millisecond), r.Detail)
			if proc.Adopted() {
				detail = "answers as adopted: " + r.Detail
			}
			in.emit(telemetry.Event{Type: telemetry.EventReady, PID: proc.PID(), Detail: detail})
			return readyOK
		}
		health, note := "starting: "+r.Detail, ""
		if r.Refused {
			note = in.portMismatch(ctx, &mismatch, proc, cfg, spec)
		}
		in.setHealthNote(health, note)
		t := time.NewTimer(wait)
		select {
		case <-proc.Exited():
			t.Stop()
			return readyExited
		case <-deadline.C:
			t.Stop()
			return readyTimeout
		case <-ctx.Done():
			t.Stop()
			return readyStopped
		case <-in.restart:
			t.Stop()
			return readyRestart
		case <-t.C:
		}
		if wait < 500*time.Millisecond {
			wait *= 2
		}
	}
}

// portMismatch looks for the process ignoring its PORT (see package
// portcheck), with a port_mismatch event once it is certain, and returns
// the mismatch in words ("" while none is known).
func (in *Instance) portMismatch(ctx context.Context, c *portcheck.Check, proc *process.Process, cfg *config.App, spec probe.Spec) string {
	in.mu.Lock()
	port := in.port
	in.mu.Unlock()
	found, isNew := c.Look(ctx, portcheck.Mismatch{App: in.app.App, Instance: in.ID, PID: proc.PID(), Port: port,
		Command: cfg.Command, Dir: cfg.Dir}, spec)
	if isNew {
		in.emit(telemetry.Event{Type: telemetry.EventPortMismatch, PID: proc.PID(), Detail: found})
	}
	return found
}

// watch probes a ready instance until its process exits or it is stopped.
func (in *Instance) watch(ctx context.Context, proc *process.Process, m *pool.Member, cfg *config.App) outcome {
	var count probeCount
	t := time.NewTimer(jitter(cfg.Health.Interval.D()))
	defer t.Stop()
	for {
		select {
		case <-proc.Exited():
			in.onExit(ctx, proc, m, "")
			return crashed
		case <-ctx.Done():
			return in.shutdown(proc, m, in.effective(), in.requestedStop())
		case <-in.restart:
			in.shutdown(proc, m, in.effective(), Hard)
			return restarted
		case <-m.Kicked():
		case <-t.C:
		}
		cfg = in.effective()
		if m.Held() {
			// Held out of rotation for a dump, which pauses the process:
			// a probe would count the pause as a failure.
			resetTimer(t, jitter(cfg.Health.Interval.D()))
			continue
		}
		mark := m.EjectionMark()
		r := in.probe(ctx, m.Addr, probe.SpecFor(cfg.Health))
		if ctx.Err() != nil {
			continue
		}
		in.judge(&count, r, mark, m, cfg.Health, proc.PID())
		next := jitter(cfg.Health.Interval.D())
		if m.Ejected() && next > 500*time.Millisecond {
			// Passive ejection holds the member out until a probe passes:
			// probe it soon rather than a whole interval later.
			next = 500 * time.Millisecond
		}
		resetTimer(t, next)
	}
}

// onExit handles a process that exited by itself.
func (in *Instance) onExit(ctx context.Context, proc *process.Process, m *pool.Member, when string) {
	in.setState(pool.Crashed)
	info := proc.Exit()
	detail := info.String()
	if when != "" {
		detail += " " + when
	}
	exit := &pool.Exit{PID: proc.PID(), Detail: detail, Signal: info.Signal, At: proc.ExitedAt()}
	m.SetExit(exit)
	// Children the app left behind would hold its port or leak. (An
	// adopted process's group is checked first: see SignalGroup.)
	proc.SignalGroup(syscall.SIGKILL)
	in.app.Pool.NoteExit(in.ID, detail, exit.At)
	in.app.Pool.Remove(m)
	in.setHealth(detail)
	// Let requests that failed with this exit be attributed to it before
	// the event records how many did.
	sleepCtx(ctx, exitSettle)
	ev := telemetry.Event{Type: telemetry.EventExit, PID: proc.PID(), ExitCode: info.Code, Signal: info.Signal,
		Detail: detail, Failed: int(exit.Failed.Load()), Output: lastLines(in.out.Exited(proc.PID()), exitOutputLines)}
	switch {
	case ev.Failed == 1:
		ev.Detail += "; 1 request failed with it"
	case ev.Failed > 1:
		ev.Detail += fmt.Sprintf("; %d requests failed with it", ev.Failed)
	}
	in.emit(ev)
}

// exitSettle is how long an exit waits for failed requests to be
// attributed to it before its event is written.
const exitSettle = 100 * time.Millisecond

func (in *Instance) onStartTimeout(ctx context.Context, proc *process.Process, m *pool.Member, cfg *config.App) {
	in.mu.Lock()
	last := in.health
	in.mu.Unlock()
	in.emit(telemetry.Event{Type: telemetry.EventStartTimeout, PID: proc.PID(),
		Detail: fmt.Sprintf("not ready within start_timeout %s; last check: %s", cfg.StartTimeout.D(), last)})
	proc.SignalGroup(syscall.SIGKILL)
	proc.WaitExit(5 * time.Second)
	in.onExit(ctx, proc, m, "after start_timeout")
}

// effective is the config this instance runs with: its own command, dir
// and env, and the app's current probe and timeout settings (which a
// reload applies without restarting processes).
func (in *Instance) effective() *config.App {
	cur := in.app.Config()
	if in.spec == nil || in.spec == cur {
		return cur
	}
	c := *cur
	c.Command, c.Dir, c.Env = in.spec.Command, in.spec.Dir, in.spec.Env
	return &c
}

// requestedStop is how Stop asked the instance to stop.
func (in *Instance) requestedStop() StopMode {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stopMode
}

// shutdown stops a process: out of rotation; with Drain, in-flight
// requests finish (bounded by stop_timeout); then SIGTERM, then SIGKILL.
// A hard restart (Hard) skips the wait for in-flight requests.
func (in *Instance) shutdown(proc *process.Process, m *pool.Member, cfg *config.App, mode StopMode) outcome {
	if mode == Leave {
		if proc.Leave() {
			// A line it is in the middle of writing is cut here: the
			// successor shows the rest, this gatehouse the part it read.
			in.out.Flush(proc.PID())
			return left
		}
		// It ended as it was left, and this gatehouse read how: report
		// it, and drop its record, for no successor could.
		<-proc.Exited()
		in.onExit(context.Background(), proc, m, "")
		return stopped
	}
	in.setState(pool.Draining)
	start := time.Now()
	if mode == Drain {
		in.emit(telemetry.Event{Type: telemetry.EventDrain, PID: proc.PID(),
			Detail: "out of rotation; waiting for " + count(int(m.Inflight()), "in-flight request", "in-flight requests")})
		waitDrained(proc, m, cfg.StopTimeout.D())
	}
	proc.SignalGroup(syscall.SIGTERM)
	detail := ""
	if !proc.WaitExit(cfg.StopTimeout.D()) {
		detail = fmt.Sprintf("did not exit within stop_timeout %s of SIGTERM; sent SIGKILL; ", cfg.StopTimeout.D())
		proc.SignalGroup(syscall.SIGKILL)
		proc.WaitExit(5 * time.Second)
	}
	proc.SignalGroup(syscall.SIGKILL)
	in.app.Pool.Remove(m)
	info := proc.Exit()
	in.setHealth("stopped")
	in.emit(telemetry.Event{Type: telemetry.EventStop, PID: proc.PID(), ExitCode: info.Code, Signal: info.Signal,
		Detail: fmt.Sprintf("%s%s after %s", detail, info, time.Since(start).Round(time.Millisecond))})
	return stopped
}

// waitDrained waits until m has no in-flight request, the process exits,
// or d passes. Open tunnels (WebSockets) are not waited for: they have no
// end to wait for, and the app's stop ends them.
func waitDrained(proc *process.Process, m *pool.Member, d time.Duration) {
	deadline := time.Now().Add(d)
	for m.Requests() > 0 && time.Now().Before(deadline) {
		select {
		case <-proc.Exited():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// setState moves the instance, and the member of its current process, to
// s. Both moves are checked against pool's transition table.
func (in *Instance) setState(s pool.State) {
	in.mu.Lock()
	from := in.state
	in.state = s
	switch {
	case s != pool.Unhealthy:
		in.unhealthySince = time.Time{}
	case from != pool.Unhealthy:
		in.unhealthySince = time.Now()
	}
	m := in.member
	in.mu.Unlock()
	pool.CheckTransition(in.ID, from, s)
	if m != nil {
		m.SetState(s)
	}
}

// CurrentMember is the pool member of the instance's current process;
// nil between processes.
func (in *Instance) CurrentMember() *pool.Member {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.member
}

// CannotStart is why the instance's command cannot be run (its program
// is missing or not executable, or its dir cannot be entered), or "": such an instance is not
// restarted until asked, so whoever waits for it to become ready need not.
func (in *Instance) CannotStart() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cannotStart
}

// UnhealthySince is when failed probes took the instance out of
// rotation, if it is still out for them (ok false otherwise): what
// health.recycle_after is measured from.
func (in *Instance) UnhealthySince() (since time.Time, ok bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.unhealthySince, in.state == pool.Unhealthy
}

// State is the instance's current state.
func (in *Instance) State() pool.State {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.state
}

func (in *Instance) setHealth(h string) { in.setHealthNote(h, "") }

// setHealthNote sets the probe detail h, and the member's note: h, and
// what is known to be wrong (a port mismatch) when known, so that the
// 503 of a held request says it.
func (in *Instance) setHealthNote(h, known string) {
	in.mu.Lock()
	in.health = h
	m := in.member
	in.mu.Unlock()
	if m != nil {
		if known != "" {
			h += "; " + known
		}
		m.SetNote(h)
		m.SetProblem(known)
	}
}

func (in *Instance) emit(ev telemetry.Event) {
	ev.App = in.app.App
	ev.Instance = in.ID
	in.app.Events.Emit(ev)
}

// jitter spreads probes of instances started together by ±10%.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - d/10 + rand.N(d/5+1)
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
	t.Reset(d)
}

// sleepCtx sleeps d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// probe checks addr once and reports the result to the metrics hook.
func (in *Instance) probe(ctx context.Context, addr string, spec probe.Spec) probe.Result {
	r := in.app.Prober.Check(ctx, addr, spec)
	if f := in.app.ProbeResult; f != nil && ctx.Err() == nil {
		f(in.app.App, in.ID, r)
	}
	return r
}

// exitOutputLines is how many of its last output lines an exit event
// keeps: enough for a stack trace's head.
const exitOutputLines = 20

func lastLines(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

// count is n with the noun in the number it takes: "1 request",
// "2 requests".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
