package dumps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/procdump"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// heldInstance is an instance whose requests the test counts and whose
// holds it records.
type heldInstance struct {
	pid      int
	inflight atomic.Int64
	holds    atomic.Int32
	// heldDuringTake is whether a hold was on while the dump ran.
	heldDuringTake atomic.Bool
	// onHold, if set, runs as the instance is held.
	onHold func()
}

func (h *heldInstance) PID() int        { return h.pid }
func (h *heldInstance) Inflight() int64 { return h.inflight.Load() }
func (h *heldInstance) Output() io.ReadCloser {
	return io.NopCloser(strings.NewReader("goroutine 1 [running]:\n"))
}

func (h *heldInstance) Hold() func() {
	h.holds.Add(1)
	if h.onHold != nil {
		h.onHold()
	}
	var once sync.Once
	return func() { once.Do(func() { h.holds.Add(-1) }) }
}

type oneInstance struct{ in *heldInstance }

func (f oneInstance) Find(app, id string) (string, string, Instance, error) {
	if id != "" && id != "web-1" {
		return "", "", nil, &Error{Status: http.StatusNotFound, Msg: "no instance " + id}
	}
	return "web", "web-1", f.in, nil
}

func newTestDumper(t *testing.T, in *heldInstance, take TakeFunc, l Limits, drain time.Duration) (*Dumper, *telemetry.Events) {
	t.Helper()
	ev := telemetry.NewEvents(nil, 0)
	d := New(Options{Dir: filepath.Join(t.TempDir(), "dumps"), Fleet: oneInstance{in}, Events: ev, Take: take, Limits: l, DrainTimeout: drain,
		Check: func(procdump.Kind, int, procdump.Options) error { return nil }})
	return d, ev
}

func eventTypes(ev *telemetry.Events) []string {
	var out []string
	for _, e := range ev.Since(time.Time{}) {
		out = append(out, e.Type+":"+e.Trigger)
	}
	return out
}

// A dump holds the instance out of rotation while it runs, waits for
// its requests within drain_timeout, keeps the file with what is known
// of it, and says so in events.
func TestDumpHoldsTheInstanceWhileItIsTaken(t *testing.T) {
	t.Parallel()
	in := &heldInstance{pid: 4242}
	in.inflight.Store(1)
	// The request in flight ends once the instance is held.
	in.onHold = func() { go in.inflight.Store(0) }
	take := func(ctx context.Context, kind procdump.Kind, pid int, w io.Writer, opt procdump.Options) (procdump.Result, error) {
		in.heldDuringTake.Store(in.holds.Load() > 0)
		if in.Inflight() != 0 {
			t.Errorf("the dump began with %d requests in flight", in.Inflight())
		}
		io.WriteString(w, "stack of "+string(kind))
		return procdump.Result{Kind: kind, Runtime: procdump.RuntimeNode, Tool: "node inspector", Paused: 30 * time.Millisecond, Format: "txt"}, nil
	}
	d, ev := newTestDumper(t, in, take, Limits{MaxSize: 1 << 20, MaxCount: 5}, 5*time.Second)
	m, err := d.Take(context.Background(), Request{App: "web", Kind: procdump.KindStacks, By: "a test"})
	if err != nil {
		t.Fatal(err)
	}
	if !in.heldDuringTake.Load() || in.holds.Load() != 0 {
		t.Errorf("held during the dump %v, holds after it %d; want held, then released", in.heldDuringTake.Load(), in.holds.Load())
	}
	want := Meta{App: "web", Instance: "web-1", PID: 4242, Kind: "stacks", Runtime: "node", Tool: "node inspector", Size: 15, PausedMS: 30, By: "a test"}
	if d := cmp.Diff(want, m, cmpIgnoreTaken()); d != "" {
		t.Errorf("meta (-want +got):\n%s", d)
	}
	f, got, err := d.Open(m.Name)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "stack of stacks" || got.Name != m.Name {
		t.Errorf("kept %q as %q", b, got.Name)
	}
	if d := cmp.Diff([]string{"dump_started:a test", "dump:a test"}, eventTypes(ev)); d != "" {
		t.Errorf("events (-want +got):\n%s", d)
	}
}

func cmpIgnoreTaken() cmp.Option {
	return cmp.FilterPath(func(p cmp.Path) bool {
		switch p.Last().String() {
		case ".Name", ".Created", ".DrainedMS":
			return true
		}
		return false
	}, cmp.Ignore())
}

// A request that does not end within drain_timeout (a stuck one, often
// why the dump is taken) is dumped with the process, and counted.
func TestDumpDoesNotWaitPastTheDrainTimeout(t *testing.T) {
	t.Parallel()
	in := &heldInstance{pid: 7}
	in.inflight.Store(2)
	take := func(ctx context.Context, kind procdump.Kind, pid int, w io.Writer, opt procdump.Options) (procdump.Result, error) {
		return procdump.Result{Kind: kind, Format: "txt"}, nil
	}
	d, _ := newTestDumper(t, in, take, Limits{MaxSize: 1 << 20, MaxCount: 5}, 50*time.Millisecond)
	m, err := d.Take(context.Background(), Request{Instance: "web-1", Kind: procdump.KindStacks})
	if err != nil {
		t.Fatal(err)
	}
	if m.InflightAtStart != 2 || m.DrainedMS < 50 {
		t.Errorf("inflight at start %d after %dms, want 2 after ≥ 50ms", m.InflightAtStart, m.DrainedMS)
	}
}

// A failed dump is an event and leaves no file; the instance is back in
// rotation.
func TestFailedDumpLeavesNothingBehind(t *testing.T) {
	t.Parallel()
	in := &heldInstance{pid: 7}
	take := func(ctx context.Context, kind procdump.Kind, pid int, w io.Writer, opt procdump.Options) (procdump.Result, error) {
		io.WriteString(w, "half a core")
		return procdump.Result{}, fmt.Errorf("gcore: %w", procdump.ErrExited)
	}
	d, ev := newTestDumper(t, in, take, Limits{MaxSize: 1 << 20, MaxCount: 5}, 0)
	_, err := d.Take(context.Background(), Request{Instance: "web-1", Kind: procdump.KindCore})
	if !errors.Is(err, procdump.ErrExited) {
		t.Fatalf("err %v, want ErrExited", err)
	}
	if in.holds.Load() != 0 {
		t.Error("the instance is still held")
	}
	ents, _ := os.ReadDir(d.store.dir)
	if len(ents) != 0 {
		t.Errorf("left %v in the store", ents)
	}
	if got := eventTypes(ev); len(got) != 2 || got[1] != telemetry.EventDumpFailed+":" {
		t.Errorf("events %v, want dump_started then dump_failed", got)
	}
}

// The cap removes the oldest dumps as new ones are kept, with an event
// naming the limit.
func TestDumpCapRemovesTheOldest(t *testing.T) {
	t.Parallel()
	in := &heldInstance{pid: 7}
	take := func(ctx context.Context, kind procdump.Kind, pid int, w io.Writer, opt procdump.Options) (procdump.Result, error) {
		io.WriteString(w, "0123456789")
		return procdump.Result{Kind: kind, Format: "txt"}, nil
	}
	d, ev := newTestDumper(t, in, take, Limits{MaxSize: 1 << 20, MaxCount: 2}, 0)
	var names []string
	for range 3 {
		m, err := d.Take(context.Background(), Request{Instance: "web-1", Kind: procdump.KindStacks})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, m.Name)
	}
	list, err := d.List()
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, m := range list {
		kept = append(kept, m.Name)
	}
	if d := cmp.Diff(names[1:], kept); d != "" {
		t.Errorf("kept (-want +got):\n%s", d)
	}
	var removed []string
	for _, e := range ev.Since(time.Time{}) {
		if e.Type == telemetry.EventDumpRemoved {
			removed = append(removed, e.Value+":"+e.Trigger)
		}
	}
	if d := cmp.Diff([]string{names[0] + ":max_count"}, removed); d != "" {
		t.Errorf("dump_removed events (-want +got):\n%s", d)
	}
	if _, _, err := d.Open(names[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("open of a removed dump: %v, want ErrNotFound", err)
	}
}

// One dump of an instance at a time: a second is refused 409 at once.
func TestSecondDumpOfAnInstanceIsRefused(t *testing.T) {
	t.Parallel()
	in := &heldInstance{pid: 7}
	started, finish := make(chan struct{}), make(chan struct{})
	take := func(ctx context.Context, kind procdump.Kind, pid int, w io.Writer, opt procdump.Options) (procdump.Result, error) {
		close(started)
		<-finish
		return procdump.Result{Kind: kind, Format: "txt"}, nil
	}
	d, _ := newTestDumper(t, in, take, Limits{MaxSize: 1 << 20, MaxCount: 5}, 0)
	done := make(chan error, 1)
	go func() {
		_, err := d.Take(context.Background(), Request{Instance: "web-1", Kind: procdump.KindCore})
		done <- err
	}()
	<-started
	_, err := d.Take(context.Background(), Request{Instance: "web-1", Kind: procdump.KindStacks})
	var refused *Error
	if !errors.As(err, &refused) || refused.Status != http.StatusConflict {
		t.Errorf("second dump: %v, want a 409 refusal", err)
	}
	close(finish)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDumpRefusals(t *testing.T) {
	t.Parallel()
	take := func(ctx context.Context, kind procdump.Kind, pid int, w io.Writer, opt procdump.Options) (procdump.Result, error) {
		t.Error("a refused dump was taken")
		return procdump.Result{}, nil
	}
	for _, tc := range []struct {
		name   string
		pid    int
		req    Request
		status int
	}{
		{"unknown kind", 7, Request{Instance: "web-1", Kind: "memory"}, http.StatusBadRequest},
		{"no such instance", 7, Request{Instance: "web-9", Kind: procdump.KindCore}, http.StatusNotFound},
		{"no process", 0, Request{Instance: "web-1", Kind: procdump.KindCore}, http.StatusConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := newTestDumper(t, &heldInstance{pid: tc.pid}, take, Limits{MaxSize: 1, MaxCount: 1}, 0)
			_, err := d.Take(context.Background(), tc.req)
			var refused *Error
			if !errors.As(err, &refused) || refused.Status != tc.status {
				t.Errorf("err %v, want a %d refusal", err, tc.status)
			}
		})
	}
}

// A dump that would be refused is refused before the instance is held
// or drained: a Go program's stacks without allow_exit took it out of
// rotation for drain_timeout first, for nothing.
func TestRefusedDumpDoesNotHoldTheInstance(t *testing.T) {
	t.Parallel()
	in := &heldInstance{pid: 7}
	in.inflight.Store(1) // would make a hold wait out the drain
	take := func(ctx context.Context, kind procdump.Kind, pid int, w io.Writer, opt procdump.Options) (procdump.Result, error) {
		t.Error("a refused dump was taken")
		return procdump.Result{}, nil
	}
	d, ev := newTestDumper(t, in, take, Limits{MaxSize: 1 << 20, MaxCount: 5}, time.Minute)
	d.opt.Check = func(kind procdump.Kind, pid int, opt procdump.Options) error {
		if in.holds.Load() != 0 {
			t.Error("checked while held")
		}
		return &procdump.UnsupportedError{Kind: kind, Runtime: procdump.RuntimeGo, NeedsAllowExit: true, Reason: "SIGQUIT ends it"}
	}
	start := time.Now()
	_, err := d.Take(context.Background(), Request{Instance: "web-1", Kind: procdump.KindStacks})
	var unsupported *procdump.UnsupportedError
	if !errors.As(err, &unsupported) || time.Since(start) > 5*time.Second {
		t.Errorf("Take: %v after %v, want the refusal at once", err, time.Since(start))
	}
	if got := eventTypes(ev); len(got) != 0 {
		t.Errorf("events %v, want none: nothing was held or taken", got)
	}
}

// Auto-heal's dump of an instance an admin is dumping already waits for
// that dump and takes it as its own, rather than recycling the instance
// under it.
func TestAutoHealDumpWaitsForTheOneUnderWay(t *testing.T) {
	t.Parallel()
	in := &heldInstance{pid: 7}
	var takes atomic.Int32
	started, finish := make(chan struct{}), make(chan struct{})
	take := func(ctx context.Context, kind procdump.Kind, pid int, w io.Writer, opt procdump.Options) (procdump.Result, error) {
		if takes.Add(1) == 1 {
			close(started)
			<-finish
		}
		return procdump.Result{Kind: kind, Format: "txt"}, nil
	}
	d, _ := newTestDumper(t, in, take, Limits{MaxSize: 1 << 20, MaxCount: 5}, 0)
	admin := make(chan error, 1)
	go func() {
		_, err := d.Take(context.Background(), Request{Instance: "web-1", Kind: procdump.KindCore, By: "an admin"})
		admin <- err
	}()
	<-started
	healed := make(chan error, 1)
	go func() { healed <- d.Dump(context.Background(), "web", "web-1", "core", "auto-heal") }()
	select {
	case err := <-healed:
		t.Fatalf("auto-heal's dump returned (%v) while the admin's was still being taken", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(finish)
	if err := <-admin; err != nil {
		t.Fatal(err)
	}
	if err := <-healed; err != nil {
		t.Errorf("auto-heal's dump: %v, want the admin's taken for it", err)
	}
	if n := takes.Load(); n != 1 {
		t.Errorf("%d dumps taken, want the admin's alone", n)
	}
}
