package supervisor

// Handing running instances to the next gatehouse and taking them back:
// shims, Leave, adoption, TakeBack, and the records they go by.
// Supervisors run in this test process; a gatehouse that left its
// processes and then went away is played by rewriting processes.json's
// writer to a process that has exited (the adoption rules are the same as
// for an upgrade's successor, whose parent wrote the record).

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/adoption"
	"github.com/gatehouse/gatehouse/internal/adoption/adoptiontest"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/process"
	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// webConfig is a one-app config: web runs the fault app with args.
func webConfig(t *testing.T, dataDir string, instances int, args ...string) *config.Config {
	t.Helper()
	bin := testutil.BuildBinary(t, testutil.FaultAppPkg)
	cfg := config.Default()
	cfg.Listen, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = dataDir
	app := config.NewApp("web")
	app.Command = append(config.Command{bin}, args...)
	app.Instances = instances
	app.Routes = config.PlainRoutes("/")
	app.Health.Path = "/healthz"
	app.Health.Interval = config.Duration(300 * time.Millisecond)
	app.Health.Timeout = config.Duration(time.Second)
	app.StartTimeout = config.Duration(10 * time.Second)
	app.StopTimeout = config.Duration(3 * time.Second)
	app.HoldTimeout = config.Duration(3 * time.Second)
	cfg.Apps = map[string]*config.App{"web": app}
	cfg.Order = []string{"web"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// runningSupervisor is a supervisor running in this process.
type runningSupervisor struct {
	sup    *Supervisor
	cancel context.CancelFunc
	done   chan struct{}
}

// startSupervisor runs a supervisor for cfg until the test ends (or stop).
func startSupervisor(t *testing.T, cfg *config.Config, events *telemetry.Events) *runningSupervisor {
	t.Helper()
	return runSupervisor(t, cfg, Options{Events: events})
}

// runSupervisor is startSupervisor with opts, on cfg's data_dir, logging
// nowhere and sampling no process.
func runSupervisor(t *testing.T, cfg *config.Config, opts Options) *runningSupervisor {
	t.Helper()
	opts.DataDir, opts.Logger, opts.SampleInterval = cfg.DataDir, discardLogger(), time.Hour
	r := &runningSupervisor{sup: New(cfg, opts), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		defer close(r.done)
		r.sup.Run(ctx)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run: instances it still supervises are stopped, those it left
// run on.
func (r *runningSupervisor) stop(t *testing.T) {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Errorf("supervisor did not stop within 30s")
	}
}

func (r *runningSupervisor) instances() []InstanceStatus {
	return r.sup.App("web").statusAll()
}

func (a *App) statusAll() []InstanceStatus {
	var out []InstanceStatus
	for _, in := range a.Instances() {
		out = append(out, in.Status())
	}
	return out
}

func (r *runningSupervisor) waitReady(t *testing.T, n int) []InstanceStatus {
	t.Helper()
	var ins []InstanceStatus
	testutil.WaitFor(t, 20*time.Second, strconv.Itoa(n)+" ready instances of web", func() bool {
		ins = r.instances()
		ready := 0
		for _, in := range ins {
			if in.State == "ready" {
				ready++
			}
		}
		return ready == n && len(ins) == n
	})
	return ins
}

// discardLogger is a logger that writes nowhere.
func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// readProcessesDoc reads processes.json.
func readProcessesDoc(t *testing.T, dataDir string) adoption.Doc {
	t.Helper()
	doc, ok := adoptiontest.ReadDoc(t, dataDir)
	if !ok {
		t.Fatalf("no %s in %s", adoption.File, dataDir)
	}
	return doc
}

// orphanDoc rewrites processes.json as if the gatehouse that wrote it
// had gone.
func orphanDoc(t *testing.T, dataDir string) {
	t.Helper()
	adoptiontest.WriteDoc(t, dataDir, adoptiontest.OrphanDoc(t, readProcessesDoc(t, dataDir)))
}

// eventsOf are the events of type typ for instance id.
func eventsOf(events *telemetry.Events, typ, id string) []telemetry.Event {
	var out []telemetry.Event
	for _, e := range events.Since(time.Time{}) {
		if e.Type == typ && e.Instance == id {
			out = append(out, e)
		}
	}
	return out
}

func describeAllEvents(events *telemetry.Events) string {
	var b strings.Builder
	for _, e := range events.Since(time.Time{}) {
		code := ""
		if e.ExitCode != nil {
			code = " code=" + strconv.Itoa(*e.ExitCode)
		}
		b.WriteString("  " + e.Type + " " + e.Instance + " pid=" + strconv.Itoa(e.PID) + code + ": " + e.Detail)
		if len(e.Output) > 0 {
			b.WriteString(" output=" + strings.Join(e.Output, " ⏎ "))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// A previous gatehouse was killed; later its shim and app ended too (the
// shim killed, the OOM killer), with no status written, and the app's pid
// P was reused by the leader of an unrelated process group (a user's
// shell job, a daemon: every session and job leader has pgid = pid). The
// next gatehouse adopts the record and finds the shim gone and no status;
// onExit then kills the children the app left behind by signalling the
// app's group, which here would be P's. The guard for adopted processes
// (only within a minute of the exit) does not help, because with no status
// file the exit time is taken as now. The record's start ticks, which are
// not P's, must keep P's group from being signalled.
func TestAdoptedRecordOfAReusedPIDKillsNoProcessGroup(t *testing.T) {
	if procid.BootID() == "" {
		t.Skip("no boot id")
	}
	dataDir := t.TempDir()
	cfg := webConfig(t, dataDir, 1)
	// The unrelated group: leader sh (pid P) with a child.
	other, done := adoptiontest.SpawnGroup(t, "sleep 30 & wait")
	p := other.Process.Pid
	shimPID, shimTicks := adoptiontest.ExitedProcess(t)
	adoptiontest.WriteOrphanedDoc(t, dataDir, adoption.ProcessRecord{App: "web", ID: "web-1", PID: p, PGID: p,
		StartTicks: adoptiontest.StartTicksOf(t, p) - 1, Port: testutil.FreePort(t), StartedAt: time.Now().Add(-time.Hour),
		Command: process.CommandArgv(cfg.Apps["web"].Command), ShimPID: shimPID, ShimStartTicks: shimTicks,
		StatusFile: filepath.Join(dataDir, "run", "web-1.1.1.exit")})
	events := telemetry.NewEvents(nil, 0)
	r := startSupervisor(t, cfg, events)
	testutil.WaitFor(t, 20*time.Second, "web-1 to be adopted, found ended, and started again", func() bool {
		return len(eventsOf(events, telemetry.EventExit, "web-1")) > 0 && len(r.waitReadyNow()) == 1
	})
	if adoptiontest.KilledWithin(t, done, 500*time.Millisecond) {
		t.Fatalf("process group %d, which only reuses the recorded app pid (its start time differs), was killed "+
			"when the adopted record was found ended; events:\n%s", p, describeAllEvents(events))
	}
}

// waitReadyNow returns the ready instances.
func (r *runningSupervisor) waitReadyNow() []InstanceStatus {
	var out []InstanceStatus
	for _, in := range r.instances() {
		if in.State == "ready" {
			out = append(out, in)
		}
	}
	return out
}

// The record's shim pid was reused (the shim ended long ago) by an
// unrelated process whose fd 3 is a pipe. adopt reads the app's output
// through /proc/SHIM/fd/3, so it must first check that SHIM is still the
// recorded shim (here its start ticks differ): otherwise it would take the
// bytes another program is waiting for, and write them to the instance's
// log.
func TestAdoptDoesNotReadAReusedShimPIDsDescriptor(t *testing.T) {
	if procid.BootID() == "" {
		t.Skip("no boot id")
	}
	dataDir := t.TempDir()
	cfg := webConfig(t, dataDir, 1)
	// The unrelated process, holding the read end of a pipe at fd 3, and
	// the data that waits in the pipe for it.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	other := exec.Command("sleep", "30")
	other.ExtraFiles = []*os.File{pr}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	const secret = "input meant for another program\n"
	if _, err := pw.WriteString(secret); err != nil {
		t.Fatal(err)
	}
	appPID, appTicks := adoptiontest.ExitedProcess(t)
	shim := other.Process.Pid
	adoptiontest.WriteOrphanedDoc(t, dataDir, adoption.ProcessRecord{App: "web", ID: "web-1", PID: appPID, PGID: appPID,
		StartTicks: appTicks, Port: testutil.FreePort(t), StartedAt: time.Now().Add(-time.Hour),
		Command: process.CommandArgv(cfg.Apps["web"].Command), ShimPID: shim, ShimStartTicks: adoptiontest.StartTicksOf(t, shim) - 1,
		StatusFile: filepath.Join(dataDir, "run", "web-1.1.1.exit")})
	events := telemetry.NewEvents(nil, 0)
	r := startSupervisor(t, cfg, events)
	testutil.WaitFor(t, 20*time.Second, "web-1 to be adopted, found ended, and started again", func() bool {
		return len(eventsOf(events, telemetry.EventExit, "web-1")) > 0 && len(r.waitReadyNow()) == 1
	})
	// What is left in the pipe is still there for its reader. (pr is in
	// blocking mode since exec passed it on: ask how much it holds first;
	// TIOCINQ is FIONREAD.)
	var got string
	if n, err := unix.IoctlGetInt(int(pr.Fd()), unix.TIOCINQ); err == nil && n > 0 {
		buf := make([]byte, n)
		n, _ := pr.Read(buf)
		got = string(buf[:n])
	}
	pr.Close()
	if got != secret {
		logged, _ := os.ReadFile(filepath.Join(dataDir, "logs", "web", "web-1.log"))
		t.Fatalf("the pipe of process %d (which reuses the recorded shim pid, with another start time) holds %q, want %q: "+
			"the adopting gatehouse read it; web-1's log:\n%s", shim, got, secret, logged)
	}
}

// getDirect asks an instance's port directly for path, as a request the
// leaving gatehouse still forwards would.
func getDirect(port int, path string) {
	c := &http.Client{Timeout: 5 * time.Second}
	if resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + path); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// An instance that crashes after its gatehouse left it and before the
// next one adopts it (during an upgrade, or after a gatehouse was
// killed): the adopter reports the exit with its code, its last output
// (the panic a crash prints: what the user needs to see) and restarts it
// once. The output is in the pipe, which the leaving gatehouse no longer
// reads; it survives only while the shim, the pipe's last holder, waits
// for an adopter to read it rather than exiting once it wrote the status.
func TestCrashBetweenLeaveAndAdoptionIsReportedOnce(t *testing.T) {
	dataDir := t.TempDir()
	cfg := webConfig(t, dataDir, 1)
	events := telemetry.NewEvents(nil, 0)
	old := startSupervisor(t, cfg, events)
	in := old.waitReady(t, 1)[0]
	old.sup.Leave()
	old.stop(t) // the old gatehouse exits, leaving web-1 running
	rec := readProcessesDoc(t, dataDir).Processes
	if len(rec) != 1 || rec[0].PID != in.PID {
		t.Fatalf("after Leave, processes.json records %+v; want web-1 pid %d", rec, in.PID)
	}
	// It crashes: a panic on stderr, exit code 3.
	getDirect(in.Port, "/crash")
	app := procid.ID{PID: rec[0].PID, StartTicks: rec[0].StartTicks}
	testutil.WaitFor(t, 10*time.Second, "the app to end and its status to be written", func() bool {
		_, err := os.Stat(rec[0].StatusFile)
		return !app.Alive() && err == nil
	})
	// The next gatehouse comes once the shim is done, or a few seconds
	// later (a restart by systemd, an upgrade's successor starting up).
	shim := procid.ID{PID: rec[0].ShimPID, StartTicks: rec[0].ShimStartTicks}
	shimCtx, shimDone := context.WithTimeout(context.Background(), 3*time.Second)
	procid.Wait(shimCtx, shim)
	shimDone()
	orphanDoc(t, dataDir)

	next := startSupervisor(t, cfg, events)
	testutil.WaitFor(t, 20*time.Second, "the adopter to report web-1's exit and restart it", func() bool {
		ready := next.waitReadyNow()
		return len(ready) == 1 && ready[0].PID != in.PID
	})
	exits := eventsOf(events, telemetry.EventExit, "web-1")
	if len(exits) != 1 {
		t.Fatalf("%d exit events for web-1; want 1:\n%s", len(exits), describeAllEvents(events))
	}
	e := exits[0]
	if e.PID != in.PID || e.ExitCode == nil || *e.ExitCode != 3 {
		t.Errorf("exit event %+v; want pid %d, code 3", e, in.PID)
	}
	if !slices.ContainsFunc(e.Output, func(l string) bool { return strings.Contains(l, "panic: crash requested") }) {
		t.Errorf("web-1's exit event has output %q; want the panic it printed as it crashed:\n%s", e.Output, describeAllEvents(events))
	}
	if st := next.instances(); len(st) != 1 || st[0].Restarts != 1 {
		t.Errorf("after the adopter restarted it: %+v; want web-1 with 1 restart", st)
	}
}

// Leave comes while the gatehouse is taking in the exit of an instance's
// process: the shim has ended, and the gatehouse has reaped it and read
// (and removed) its exit status, but is still reading the last output
// (here for up to a second: a worker the app started holds the pipe). The
// instance is told to leave while its exit is half taken in. If it left
// the process as if it ran, its record would be kept for the next
// gatehouse, which would find the shim gone and no status and report the
// exit as "how is not known": the exit code, read by the gatehouse that
// left, would be lost. Whichever gatehouse reports the exit must say code
// 3, and only one may report it.
func TestLeaveDuringAnExitLosesNoExitCode(t *testing.T) {
	dataDir := t.TempDir()
	cfg := webConfig(t, dataDir, 1, "-spawn-child")
	events := telemetry.NewEvents(nil, 0)
	old := startSupervisor(t, cfg, events)
	in := old.waitReady(t, 1)[0]
	rec := readProcessesDoc(t, dataDir).Processes[0]
	shim := procid.ID{PID: rec.ShimPID, StartTicks: rec.ShimStartTicks}
	go getDirect(in.Port, "/crash")
	testutil.WaitFor(t, 10*time.Second, "the shim to end", func() bool { return !shim.Alive() })
	old.sup.Leave()
	old.stop(t)
	orphanDoc(t, dataDir)

	next := startSupervisor(t, cfg, events)
	testutil.WaitFor(t, 20*time.Second, "web-1 to run a new process", func() bool {
		ready := next.waitReadyNow()
		return len(ready) == 1 && ready[0].PID != in.PID
	})
	var exits []telemetry.Event
	for _, e := range eventsOf(events, telemetry.EventExit, "web-1") {
		if e.PID == in.PID {
			exits = append(exits, e)
		}
	}
	if len(exits) != 1 || exits[0].ExitCode == nil || *exits[0].ExitCode != 3 {
		t.Fatalf("exit events of web-1's pid %d: %d; want one, with code 3:\n%s", in.PID, len(exits), describeAllEvents(events))
	}
}

// Between Leave and TakeBack (an upgrade under way) the instances belong
// to the successor, and no operation can act on them. An operation must
// then fail and say so, as one that would start an instance does, rather
// than find no instance (all have let go) and report success having done
// nothing: `gatehouse stop web` or `gatehouse restart web` printing
// success while the processes run on unchanged for the successor to adopt.
func TestOperationsDuringLeaveFail(t *testing.T) {
	dataDir := t.TempDir()
	cfg := webConfig(t, dataDir, 1)
	r := startSupervisor(t, cfg, telemetry.NewEvents(nil, 0))
	in := r.waitReady(t, 1)[0]
	r.sup.Leave()
	a := r.sup.App("web")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"scale to 0", func() error { return a.Scale(ctx, 0, func(string, ...any) {}) }},
		{"stop", func() error { return a.Stop(ctx, func(string, ...any) {}) }},
		{"restart", func() error { return a.Restart(ctx, func(string, ...any) {}) }},
	} {
		t.Run(strings.ReplaceAll(op.name, " ", "_"), func(t *testing.T) {
			if err := op.do(); err == nil {
				t.Errorf("%s during Leave: no error; web-1 (pid %d) runs on, untouched (alive: %v)",
					op.name, in.PID, procid.Of(in.PID).Alive())
			}
		})
	}
	r.sup.TakeBack()
}

// An app with idle_timeout that is idle when its gatehouse leaves its
// instances: the idle loop goes on in the leaving gatehouse, "unloads" the
// app (it has no instance left to stop) and marks its pool unloaded; the
// wake that follows can start nothing, so the mark stays. After TakeBack
// (the upgrade failed) the adopted instance serves, and its pool must no
// longer be marked unloaded: status would say the app is starting, and a
// scale would be silently dropped (scaleLocked does nothing for an
// unloaded pool).
func TestIdleUnloadDuringLeaveDoesNotOutliveTakeBack(t *testing.T) {
	dataDir := t.TempDir()
	cfg := webConfig(t, dataDir, 1)
	cfg.Apps["web"].IdleTimeout = config.Duration(time.Second)
	r := startSupervisor(t, cfg, telemetry.NewEvents(nil, 0))
	a := r.sup.App("web")
	// Requests keep it loaded until it is left.
	stopTouch := make(chan struct{})
	touched := make(chan struct{})
	go func() {
		defer close(touched)
		for {
			a.pool.Touch()
			select {
			case <-stopTouch:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	r.waitReady(t, 1)
	r.sup.Leave()
	close(stopTouch)
	<-touched
	time.Sleep(2500 * time.Millisecond) // longer than idle_timeout and a check
	a.pool.Touch()
	r.sup.TakeBack()
	r.waitReady(t, 1)
	if a.pool.Unloaded() {
		t.Errorf("after TakeBack, web's pool is marked unloaded for idleness while web-1 serves")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Scale(ctx, 2, func(string, ...any) {}); err != nil {
		t.Fatal(err)
	}
	if n := len(r.instances()); n != 2 {
		t.Errorf("after TakeBack and scale to 2: %d instances, want 2", n)
	}
}

// TakeBack after a successor that changed what runs (here: its config has
// another command, so it stopped the left processes and started its own,
// which the taker-back in turn cannot adopt and stops): processes.json
// must list what runs. Were the record claimed with this gatehouse's
// entries from before Leave, for processes that no longer exist, nothing
// would remove them, and the next gatehouse would adopt them (an extra
// instance, found ended, restarted, and its recorded group killed).
func TestTakeBackRecordsOnlyWhatRuns(t *testing.T) {
	dataDir := t.TempDir()
	cfg := webConfig(t, dataDir, 1)
	events := telemetry.NewEvents(nil, 0)
	old := startSupervisor(t, cfg, events)
	first := old.waitReady(t, 1)[0]
	old.sup.Leave()
	orphanDoc(t, dataDir)
	// The successor runs another command.
	succ := startSupervisor(t, webConfig(t, dataDir, 1, "-health-status", "200"), events)
	testutil.WaitFor(t, 20*time.Second, "the successor to replace web-1", func() bool {
		ready := succ.waitReadyNow()
		return len(ready) == 1 && ready[0].PID != first.PID && !procid.Of(first.PID).Alive()
	})
	// It dies (SIGKILL from its predecessor): its processes and record stay.
	succ.sup.Leave()
	succ.stop(t)
	old.sup.TakeBack()
	now := old.waitReady(t, 1)[0]
	var stale []string
	for _, p := range readProcessesDoc(t, dataDir).Processes {
		if st, err := procid.ReadStat(p.PID); err != nil || st.StartTicks != p.StartTicks || st.State == 'Z' {
			stale = append(stale, p.ID+" pid "+strconv.Itoa(p.PID))
		}
	}
	if len(stale) > 0 {
		t.Errorf("after TakeBack (web runs as %s pid %d), processes.json records processes that do not run: %s",
			now.ID, now.PID, strings.Join(stale, ", "))
	}
}

// The shim writes the app's exit status under data_dir/run. When that
// directory cannot be made (here a file is in its way; a data_dir that is
// read-only, or on a full disk, does the same), every shim would fail to
// write its status, and every exit would be reported as "how is not
// known" — no exit code, no signal — though this gatehouse watched the
// process end. The exit code must be known: statusPath puts the status
// elsewhere, and warns once.
func TestExitCodeKnownWhenDataDirRunIsUnusable(t *testing.T) {
	dataDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dataDir, "run"), []byte("not a directory\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := webConfig(t, dataDir, 1, "-exit-at-start", "7")
	events := telemetry.NewEvents(nil, 0)
	startSupervisor(t, cfg, events)
	testutil.WaitFor(t, 20*time.Second, "web-1's first exit", func() bool {
		return len(eventsOf(events, telemetry.EventExit, "web-1")) > 0
	})
	e := eventsOf(events, telemetry.EventExit, "web-1")[0]
	if e.ExitCode == nil || *e.ExitCode != 7 {
		t.Errorf("web-1's exit with code 7 is reported as %q (code %v)", e.Detail, e.ExitCode)
	}
}

// `gatehouse stop web` (scale to 0) or a scale down, then an upgrade (or a
// reload that needs a new process, which is one): the successor adopts
// what runs. Were it to start instances up to the count in the config
// file, the stopped app would be started again and the scale down undone:
// a scale down or a stop, like a scale up, holds across the handover.
func TestStoppedAppStaysStoppedAcrossAHandover(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(context.Context, *App) error
		want int
	}{
		{"scale to 1", func(ctx context.Context, a *App) error { return a.Scale(ctx, 1, func(string, ...any) {}) }, 1},
		{"stop", func(ctx context.Context, a *App) error { return a.Stop(ctx, func(string, ...any) {}) }, 0},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			dataDir := t.TempDir()
			cfg := webConfig(t, dataDir, 2)
			old := startSupervisor(t, cfg, telemetry.NewEvents(nil, 0))
			old.waitReady(t, 2)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := tc.do(ctx, old.sup.App("web")); err != nil {
				t.Fatal(err)
			}
			if n := len(old.instances()); n != tc.want {
				t.Fatalf("after %s: %d instances", tc.name, n)
			}
			old.sup.Leave()
			old.stop(t)
			orphanDoc(t, dataDir)
			next := startSupervisor(t, webConfig(t, dataDir, 2), telemetry.NewEvents(nil, 0))
			// Every instance the next gatehouse runs is started, or
			// adopted and checked, by then.
			if err := next.sup.AwaitAdopted(ctx); err != nil {
				t.Fatal(err)
			}
			if n := len(next.instances()); n != tc.want {
				t.Errorf("after %s (%d instances) and a handover, the next gatehouse runs %d instances", tc.name, tc.want, n)
			}
		})
	}
}

// Leave lets go of every instance for a successor that finds them through
// processes.json. When this gatehouse's processes are not in that file —
// it could not write it (shown here by a directory in its place; a
// read-only data_dir or a full disk do the same), or another gatehouse
// runs on the same data_dir and owns it — no successor can adopt them:
// they run on unsupervised after the handover, holding their ports,
// while the successor starts instances of its own. A process the record
// does not list must not be let go: CanLeave (which an upgrade asks
// before it leaves) says so.
func TestLeaveLetsGoOnlyOfRecordedProcesses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dataDir string)
		// canLeave: the handover is possible.
		canLeave bool
	}{
		{"record written", func(t *testing.T, dataDir string) {}, true},
		{"record not writable", func(t *testing.T, dataDir string) {
			if err := os.Mkdir(filepath.Join(dataDir, adoption.File), 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"data_dir of another gatehouse", func(t *testing.T, dataDir string) {
			other := startSupervisor(t, webConfig(t, dataDir, 1), telemetry.NewEvents(nil, 0))
			other.waitReady(t, 1)
		}, false},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			dataDir := t.TempDir()
			tc.setup(t, dataDir)
			r := startSupervisor(t, webConfig(t, dataDir, 1), telemetry.NewEvents(nil, 0))
			in := r.waitReady(t, 1)[0]
			if err := r.sup.CanLeave(); err != nil {
				if tc.canLeave {
					t.Fatalf("CanLeave: %v", err)
				}
				return // supervised still, and stopped with r
			}
			r.sup.Leave()
			var recorded bool
			if doc, ok := adoptiontest.ReadDoc(t, dataDir); ok {
				recorded = slices.ContainsFunc(doc.Processes, func(p adoption.ProcessRecord) bool { return p.PID == in.PID })
			}
			supervised := slices.ContainsFunc(r.instances(), func(s InstanceStatus) bool { return s.PID == in.PID })
			if !recorded && !supervised {
				t.Errorf("Leave let go of web-1 (pid %d), which processes.json does not list: no successor can adopt it", in.PID)
			}
			// Stop what was left, as the test's own cleanup.
			r.sup.TakeBack()
			if !recorded {
				syscall.Kill(-in.PID, syscall.SIGKILL)
			}
		})
	}
}

// Two gatehouses on one data_dir: the second leaves the first's record
// alone (shared). If the second then leaves and takes back (an upgrade of
// it that failed), TakeBack must not adopt what the record lists for the
// first gatehouse, which still supervises those processes: two gatehouses
// would then probe, restart and stop the same processes, and read their
// output from the same pipe, each getting part.
func TestTakeBackAdoptsNoOtherGatehousesProcess(t *testing.T) {
	dataDir := t.TempDir()
	other := startSupervisor(t, webConfig(t, dataDir, 1), telemetry.NewEvents(nil, 0))
	theirs := other.waitReady(t, 1)[0]
	r := startSupervisor(t, webConfig(t, dataDir, 1), telemetry.NewEvents(nil, 0))
	ours := r.waitReady(t, 1)[0]
	r.sup.Leave()
	r.sup.TakeBack()
	// TakeBack has listed the instances it adopted or started; each
	// names its process once it runs.
	testutil.WaitFor(t, 20*time.Second, "web's instances to run their processes", func() bool {
		ins := r.instances()
		return len(ins) > 0 && !slices.ContainsFunc(ins, func(s InstanceStatus) bool { return s.PID == 0 })
	})
	if slices.ContainsFunc(r.instances(), func(s InstanceStatus) bool { return s.PID == theirs.PID }) {
		t.Errorf("after Leave and TakeBack, this gatehouse supervises pid %d, the other gatehouse's web-1 "+
			"(which supervises it too); its own was pid %d", theirs.PID, ours.PID)
	}
	syscall.Kill(-ours.PID, syscall.SIGKILL) // left, unrecorded (see above)
}

// The other side of TestAdoptedRecordOfAReusedPIDKillsNoProcessGroup: an
// adopted app that crashes, leaving a worker it started in its group,
// still has that worker killed, its group being provably its own.
func TestAdoptedAppsLeftoverWorkerIsKilledOnExit(t *testing.T) {
	dataDir := t.TempDir()
	pidfile := filepath.Join(t.TempDir(), "child.pid")
	cfg := webConfig(t, dataDir, 1, "-spawn-child", "-child-pidfile", pidfile)
	events := telemetry.NewEvents(nil, 0)
	old := startSupervisor(t, cfg, events)
	in := old.waitReady(t, 1)[0]
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	cpid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	worker := procid.Of(cpid)
	t.Cleanup(func() {
		if worker.Alive() {
			syscall.Kill(cpid, syscall.SIGKILL)
		}
	})
	old.sup.Leave()
	old.stop(t)
	orphanDoc(t, dataDir)
	next := startSupervisor(t, cfg, events)
	testutil.WaitFor(t, 20*time.Second, "web-1 to be adopted", func() bool {
		ready := next.waitReadyNow()
		return len(ready) == 1 && ready[0].PID == in.PID
	})
	getDirect(in.Port, "/crash")
	testutil.WaitFor(t, 20*time.Second, "web-1 to run a new process", func() bool {
		ready := next.waitReadyNow()
		return len(ready) == 1 && ready[0].PID != in.PID
	})
	testutil.WaitFor(t, 5*time.Second, "the crashed app's worker to be killed", func() bool { return !worker.Alive() })
}

// A record is adopted only if it can name an app process of its own
// group: pid 0 and 1 cannot (kill(-0) is gatehouse's own group, kill(-1)
// every process it may signal), nor a record whose group is not its pid's
// or without a start time. adoption refuses these for leftovers, and
// adoption must too: onExit or a stop would signal -PID. (Not run end to
// end: with pid 1 and init's start time a wrong answer would be kill(-1,
// SIGKILL).)
func TestAdoptableRefusesRecordsNamingNoAppGroup(t *testing.T) {
	dataDir := t.TempDir()
	cfg := webConfig(t, dataDir, 1)
	s := New(cfg, Options{Events: telemetry.NewEvents(nil, 0), DataDir: dataDir, Logger: discardLogger()})
	good := adoption.ProcessRecord{App: "web", ID: "web-1", PID: 4242, PGID: 4242, StartTicks: 99, Port: 1,
		Command: process.CommandArgv(cfg.Apps["web"].Command), ShimPID: 4243, ShimStartTicks: 98,
		StatusFile: filepath.Join(dataDir, "run", "web-1.1.1.exit")}
	if !s.adoptable(good) {
		t.Fatalf("a well-formed record is not adoptable: %+v", good)
	}
	for _, tc := range []struct {
		name string
		edit func(*adoption.ProcessRecord)
	}{
		{"pid 0", func(r *adoption.ProcessRecord) { r.PID, r.PGID = 0, 0 }},
		{"pid 1", func(r *adoption.ProcessRecord) { r.PID, r.PGID = 1, 1 }},
		{"group not its own", func(r *adoption.ProcessRecord) { r.PGID = 4000 }},
		{"no start time", func(r *adoption.ProcessRecord) { r.StartTicks = 0 }},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			rec := good
			tc.edit(&rec)
			if s.adoptable(rec) {
				t.Errorf("record %+v is adoptable", rec)
			}
		})
	}
}

// A line the app is in the middle of writing when its gatehouse leaves it:
// the leaving gatehouse has read its first part, the adopter reads the
// rest. The log file has the whole line (each writes the bytes it read);
// the live log stream (and the console, and the tail diagnose shows) must
// have the first part too, which would otherwise wait in the leaving
// gatehouse for a newline that never comes there.
func TestLineCutByLeaveIsNotLost(t *testing.T) {
	dataDir := t.TempDir()
	bin := testutil.BuildBinary(t, testutil.FaultAppPkg)
	cfg := webConfig(t, dataDir, 1)
	cfg.Apps["web"].Command = config.Command{"sh", "-c", "printf 'half a line, '; sleep 1.5; echo 'and the rest'; exec " + bin}
	lines := telemetry.NewLines()
	got, cancel := lines.Subscribe(1024)
	defer cancel()
	events := telemetry.NewEvents(nil, 0)
	start := func() *runningSupervisor { return runSupervisor(t, cfg, Options{Events: events, Lines: lines}) }
	old := start()
	logFile := filepath.Join(dataDir, "logs", "web", "web-1.log")
	testutil.WaitFor(t, 10*time.Second, "the first part of the line to be read", func() bool {
		b, _ := os.ReadFile(logFile)
		return strings.Contains(string(b), "half a line, ")
	})
	old.sup.Leave()
	old.stop(t)
	orphanDoc(t, dataDir)
	next := start()
	next.waitReady(t, 1)
	var published []string
	for len(got) > 0 {
		published = append(published, (<-got).Line)
	}
	if !slices.ContainsFunc(published, func(l string) bool { return strings.Contains(l, "half a line,") }) {
		b, _ := os.ReadFile(logFile)
		t.Errorf("the log stream has %q; the first part of the line cut by Leave is missing (the log file has %q)", published, b)
	}
}

// startUnloaded runs web (one instance, idle_timeout 1s) until it is
// unloaded for idleness.
func startUnloaded(t *testing.T) (*runningSupervisor, *App) {
	t.Helper()
	cfg := webConfig(t, t.TempDir(), 1)
	cfg.Apps["web"].IdleTimeout = config.Duration(time.Second)
	r := startSupervisor(t, cfg, telemetry.NewEvents(nil, 0))
	a := r.sup.App("web")
	r.waitReady(t, 1)
	testutil.WaitFor(t, 20*time.Second, "web to be unloaded for idleness", func() bool {
		return a.pool.Unloaded() && len(r.instances()) == 0
	})
	return r, a
}

// An app unloaded for idleness when its gatehouse leaves it (an upgrade
// that then fails): TakeBack must leave it unloaded rather than start the
// configured instances while the idle loop still waits for a wake, or the
// first request would wake it and wake would start as many again.
func TestTakeBackOfAnIdleUnloadedAppStartsNoExtraInstances(t *testing.T) {
	r, a := startUnloaded(t)
	r.sup.Leave()
	r.sup.TakeBack()
	// A request comes.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, _, err := a.pool.Acquire(ctx, 15*time.Second, nil)
	if err != nil {
		t.Fatalf("a request after TakeBack: %v", err)
	}
	m.Release()
	// Watched for a second rather than counted once after it: on a busy
	// machine the app may be unloaded for idleness again (1s) by then,
	// which is no extra instance.
	most := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		most = max(most, len(r.instances()))
	}
	if most != 1 {
		t.Errorf("after TakeBack of the unloaded app and one request, web had up to %d instances; want 1", most)
	}
}

// The same, with a request during the handover: its wake can start
// nothing (the instances are left). After TakeBack the next request
// must still wake the app.
func TestIdleUnloadedAppWakesAfterAWakeDuringLeave(t *testing.T) {
	r, a := startUnloaded(t)
	r.sup.Leave()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if m, _, err := a.pool.Acquire(ctx, 300*time.Millisecond, nil); err == nil {
		m.Release()
		t.Fatal("a request during Leave was served by an unloaded app")
	}
	r.sup.TakeBack()
	m, _, err := a.pool.Acquire(ctx, 15*time.Second, nil)
	if err != nil {
		t.Fatalf("a request after TakeBack: %v; web has %d instances", err, len(r.instances()))
	}
	m.Release()
}

// A shim killed with SIGKILL (the OOM killer, a stray kill): its app
// dies with it (PR_SET_PDEATHSIG), the worker the app started is killed
// with its group, the exit is reported once, as the shim's, and the
// instance restarts once.
func TestKilledShimTakesItsAppAndRestartsOnce(t *testing.T) {
	dataDir := t.TempDir()
	pidfile := filepath.Join(t.TempDir(), "child.pid")
	events := telemetry.NewEvents(nil, 0)
	r := startSupervisor(t, webConfig(t, dataDir, 1, "-spawn-child", "-child-pidfile", pidfile), events)
	in := r.waitReady(t, 1)[0]
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	cpid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	worker, app := procid.Of(cpid), procid.Of(in.PID)
	rec := readProcessesDoc(t, dataDir).Processes[0]
	syscall.Kill(rec.ShimPID, syscall.SIGKILL)
	testutil.WaitFor(t, 20*time.Second, "web-1 to run a new process", func() bool {
		ready := r.waitReadyNow()
		return len(ready) == 1 && ready[0].PID != in.PID
	})
	if app.Alive() || worker.Alive() {
		t.Errorf("after its shim was killed: app alive %v, its worker alive %v", app.Alive(), worker.Alive())
	}
	exits := eventsOf(events, telemetry.EventExit, "web-1")
	if len(exits) != 1 || !strings.Contains(exits[0].Detail, "shim") {
		t.Errorf("exit events: %d; want one that names the shim:\n%s", len(exits), describeAllEvents(events))
	}
	if st := r.instances(); st[0].Restarts != 1 {
		t.Errorf("restarts %d, want 1", st[0].Restarts)
	}
	if st, err := procid.ReadStat(rec.ShimPID); err == nil && st.PPID == os.Getpid() {
		t.Errorf("the killed shim (pid %d) is left a zombie child of gatehouse (state %c)", rec.ShimPID, st.State)
	}
}

// The same for an app this gatehouse started: its group is signalled
// after the app crashed only because the worker left in it carries the
// instance's identity (an empty group's id may be another program's), so
// the wiring of that proof must reach the worker.
func TestStartedAppsLeftoverWorkerIsKilledOnExit(t *testing.T) {
	dataDir := t.TempDir()
	pidfile := filepath.Join(t.TempDir(), "child.pid")
	cfg := webConfig(t, dataDir, 1, "-spawn-child", "-child-pidfile", pidfile)
	events := telemetry.NewEvents(nil, 0)
	r := startSupervisor(t, cfg, events)
	in := r.waitReady(t, 1)[0]
	b, err := os.ReadFile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	cpid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	worker := procid.Of(cpid)
	t.Cleanup(func() {
		if worker.Alive() {
			syscall.Kill(cpid, syscall.SIGKILL)
		}
	})
	getDirect(in.Port, "/crash")
	testutil.WaitFor(t, 20*time.Second, "web-1 to run a new process", func() bool {
		ready := r.waitReadyNow()
		return len(ready) == 1 && ready[0].PID != in.PID
	})
	testutil.WaitFor(t, 5*time.Second, "the crashed app's worker to be killed", func() bool { return !worker.Alive() })
}
