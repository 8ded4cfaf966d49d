package autoheal

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// fakeFleet is one app, web, whose instances the test sets up and whose
// recycles replace an instance as the supervisor does: the old one is
// stopping meanwhile, a recycle event is emitted, and the replacement has
// a new id and pid and starts on the (fake) clock after recycleTakes.
type fakeFleet struct {
	events *telemetry.Events
	cfg    *config.App

	mu        sync.Mutex
	instances []instance // of *fakeInstance
	recycled  []string   // ids, in the order Recycle was called
	next      int
	// replacementMem, when set, is the memory replacements sample at;
	// otherwise they have not been sampled yet.
	replacementMem *[2]uint64
	// replacementsUnhealthy makes replacements unhealthy from their start.
	replacementsUnhealthy bool
	// lookups counts the calls of app: a real supervisor's takes the
	// lock every app shares.
	lookups atomic.Int64
	// beforeRecycle, when set, runs as Recycle begins: what the app did
	// while the recycle waited for it (a reload replacing instances).
	beforeRecycle func()
}

// recycleTakes is how long a fake recycle takes.
const recycleTakes = 2 * time.Second

type fakeInstance struct {
	fl       *fakeFleet
	id       string
	pid      int
	started  time.Time
	stopping bool
	sampled  bool
	private  uint64
	rss      uint64
	// unhealthySince is when probes took it out of rotation; zero while
	// they do not keep it out.
	unhealthySince time.Time
}

// newInstance is the next instance; mu is held or the fleet not shared
// yet.
func (fl *fakeFleet) newInstance() *fakeInstance {
	fl.next++
	in := &fakeInstance{fl: fl, id: fmt.Sprintf("web-%d", fl.next), pid: 1000 + fl.next, started: time.Now()}
	if m := fl.replacementMem; m != nil {
		in.sampled, in.private, in.rss = true, m[0], m[1]
	}
	if fl.replacementsUnhealthy {
		in.unhealthySince = in.started
	}
	return in
}

func (fl *fakeFleet) apps() []app { return []app{fl} }

func (fl *fakeFleet) app(name string) app {
	fl.lookups.Add(1)
	if name != "web" {
		return nil
	}
	return fl
}

func (fl *fakeFleet) Name() string { return "web" }
func (fl *fakeFleet) Config() *config.App {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.cfg
}

// reload gives the app the config cfg, as a reload that starts no
// process does: the instances stay.
func (fl *fakeFleet) reload(cfg *config.App) {
	fl.mu.Lock()
	fl.cfg = cfg
	fl.mu.Unlock()
}

func (fl *fakeFleet) Instances() []instance {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return slices.Clone(fl.instances)
}

// errNoInstance is the supervisor's answer for an instance it does not
// run, or that is already stopping.
var errNoInstance = fmt.Errorf("recycle: %w", supervisor.ErrNoInstance)

func (fl *fakeFleet) Recycle(ctx context.Context, id string, due func() error, reason string) error {
	fl.mu.Lock()
	before := fl.beforeRecycle
	fl.mu.Unlock()
	if before != nil {
		before()
	}
	fl.mu.Lock()
	i := slices.IndexFunc(fl.instances, func(in instance) bool { return in.ID() == id })
	if i < 0 || fl.instances[i].(*fakeInstance).stopping {
		fl.mu.Unlock()
		return errNoInstance
	}
	old := fl.instances[i].(*fakeInstance)
	fl.mu.Unlock()
	if due != nil {
		if err := due(); err != nil {
			return fmt.Errorf("recycle %s: %w", id, err)
		}
	}
	fl.mu.Lock()
	fl.recycled = append(fl.recycled, id)
	old.stopping = true
	fl.mu.Unlock()
	fl.events.Emit(telemetry.Event{App: "web", Instance: id, PID: old.pid, Type: telemetry.EventRecycle, Detail: reason})
	select {
	case <-time.After(recycleTakes):
	case <-ctx.Done():
		return ctx.Err()
	}
	fl.mu.Lock()
	fl.instances[slices.Index(fl.instances, instance(old))] = fl.newInstance()
	fl.mu.Unlock()
	return nil
}

// instance returns the instance now in slot i.
func (fl *fakeFleet) instance(i int) *fakeInstance {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return fl.instances[i].(*fakeInstance)
}

func (fl *fakeFleet) recycles() []string {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return slices.Clone(fl.recycled)
}

// setMemory makes every instance sample at private and rss bytes, and
// the replacements too when replacementsToo.
func (fl *fakeFleet) setMemory(private, rss uint64, replacementsToo bool) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	for _, in := range fl.instances {
		in := in.(*fakeInstance)
		in.sampled, in.private, in.rss = true, private, rss
	}
	if replacementsToo {
		fl.replacementMem = &[2]uint64{private, rss}
	}
}

// replace puts a new instance in slot i, as a reload's rolling
// replacement does: the old one is gone from the app.
func (fl *fakeFleet) replace(i int) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.instances[i] = fl.newInstance()
}

// setBeforeRecycle sets what runs as each Recycle begins.
func (fl *fakeFleet) setBeforeRecycle(f func()) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.beforeRecycle = f
}

// setStopping marks instance in as on its way out.
func (fl *fakeFleet) setStopping(in *fakeInstance) {
	fl.mu.Lock()
	in.stopping = true
	fl.mu.Unlock()
}

// unhealthyReplacements makes every replacement from now on unhealthy
// from its start.
func (fl *fakeFleet) unhealthyReplacements() {
	fl.mu.Lock()
	fl.replacementsUnhealthy = true
	fl.mu.Unlock()
}

// setUnhealthy marks instance in as out of rotation for failed probes
// from now on.
func (fl *fakeFleet) setUnhealthy(in *fakeInstance) {
	fl.mu.Lock()
	in.unhealthySince = time.Now()
	fl.mu.Unlock()
}

// setHealthy marks instance in as passing its probes again.
func (fl *fakeFleet) setHealthy(in *fakeInstance) {
	fl.mu.Lock()
	in.unhealthySince = time.Time{}
	fl.mu.Unlock()
}

func (in *fakeInstance) ID() string { return in.id }

func (in *fakeInstance) Stopping() bool {
	in.fl.mu.Lock()
	defer in.fl.mu.Unlock()
	return in.stopping
}

func (in *fakeInstance) Process() process {
	return process{PID: in.pid, Port: 3000 + in.pid%1000, StartedAt: in.started}
}

func (in *fakeInstance) Unhealthy() (since time.Time, detail string, ok bool) {
	in.fl.mu.Lock()
	defer in.fl.mu.Unlock()
	if in.unhealthySince.IsZero() || in.stopping {
		return time.Time{}, "", false
	}
	return in.unhealthySince, "503 Service Unavailable in 1ms", true
}

func (in *fakeInstance) Memory() (private, rss uint64, ok bool) {
	in.fl.mu.Lock()
	defer in.fl.mu.Unlock()
	return in.private, in.rss, in.sampled
}

// healing is a healer on a fake fleet.
type healing struct {
	h      *Healer
	fl     *fakeFleet
	events *telemetry.Events
}

// sampleEvery is the healer's memory check interval in these tests.
const sampleEvery = 200 * time.Millisecond

// webApp is the app web with the auto_heal block ah.
func webApp(ah *config.AutoHeal) *config.App {
	cfg := config.NewApp("web")
	cfg.AutoHeal = ah
	return cfg
}

// healTest runs body in a synctest bubble, with a healer running over n
// instances of app until body returns.
func healTest(t *testing.T, app *config.App, n int, body func(t *testing.T, hg *healing)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		events := telemetry.NewEvents(nil, 0)
		fl := &fakeFleet{events: events, cfg: app}
		for range n {
			fl.instances = append(fl.instances, fl.newInstance())
		}
		hg := &healing{h: newHealer(fl, events, sampleEvery, nil), fl: fl, events: events}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- hg.h.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
		body(t, hg)
	})
}

// request is a finished request of instance id, ending now.
func (hg *healing) request(id, path string, status int, took time.Duration) {
	hg.h.Observe(&telemetry.AccessEntry{Time: time.Now().Add(-took), Duration: took, App: "web", Instance: id, Path: path, Status: status})
}

// of returns the events of the given types, oldest first.
func (hg *healing) of(types ...string) []telemetry.Event {
	var out []telemetry.Event
	for _, e := range hg.events.Since(time.Time{}) {
		if slices.Contains(types, e.Type) {
			out = append(out, e)
		}
	}
	return out
}

// fired is the auto_heal events so far, each as "instance trigger: value".
func (hg *healing) fired() []string {
	var out []string
	for _, e := range hg.of(telemetry.EventAutoHeal) {
		out = append(out, e.Instance+" "+e.Trigger+": "+e.Value)
	}
	return out
}

// describe formats events for failure messages.
func describe(evs []telemetry.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s %s %s pid=%d trigger=%q value=%q: %s\n", e.Time.Format("15:04:05.000"), e.Instance, e.Type, e.PID, e.Trigger, e.Value, e.Detail)
	}
	return b.String()
}

// elapse lets d of a synctest bubble's fake time pass: the bubble's
// goroutines run until they block, and the timers due on the way fire.
// It takes no real time.
func elapse(d time.Duration) { time.Sleep(d) }
