package dumps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/procdump"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Instance is one instance as a dump needs it.
type Instance interface {
	// PID is its live process, 0 when it has none.
	PID() int
	// Hold takes it out of rotation (no new requests, no probes) until
	// release.
	Hold() (release func())
	// Inflight is how many requests it is serving.
	Inflight() int64
	// Output reads what the process writes from now on, until closed:
	// where a Go program's SIGQUIT puts its stacks.
	Output() io.ReadCloser
}

// Fleet finds instances.
type Fleet interface {
	// Find returns the instance named id, with its app's name; with id
	// "", app's first ready instance. Its error, when there is none, is
	// an *Error.
	Find(app, id string) (appName, instanceID string, in Instance, err error)
}

// TakeFunc writes one dump of a process; procdump.Take.
type TakeFunc func(ctx context.Context, kind procdump.Kind, pid int, w io.Writer, opt procdump.Options) (procdump.Result, error)

// CheckFunc tells whether a dump can be taken, before the instance is
// held for it; procdump.Check.
type CheckFunc func(kind procdump.Kind, pid int, opt procdump.Options) error

// Options configure a Dumper.
type Options struct {
	// Dir is data_dir/dumps.
	Dir    string
	Fleet  Fleet
	Events *telemetry.Events
	// Take and Check are procdump's unless a test says otherwise.
	Take  TakeFunc
	Check CheckFunc
	// Limits and DrainTimeout are the dumps: block's.
	Limits       Limits
	DrainTimeout time.Duration
}

// Dumper takes dumps, one per instance at a time and at most
// maxConcurrent in all (a core is as large as the process's memory).
type Dumper struct {
	opt   Options
	store store
	slots chan struct{}

	mu sync.Mutex
	// busy is the instances ("app/instance") being dumped, each with a
	// channel closed when its dump ends.
	busy map[string]chan struct{}
}

const maxConcurrent = 2

// MaxTime bounds one dump: a core of a large process is copied and
// compressed within it.
const MaxTime = 10 * time.Minute

// drainPoll is how often a held instance's requests are counted while
// it drains: the pool keeps a count, not a signal.
const drainPoll = 20 * time.Millisecond

// New returns a Dumper over opt.Dir, clearing what a dump cut short by
// a crash left there.
func New(opt Options) *Dumper {
	if opt.Take == nil {
		opt.Take = procdump.Take
	}
	if opt.Check == nil {
		opt.Check = procdump.Check
	}
	d := &Dumper{opt: opt, store: store{dir: opt.Dir}, slots: make(chan struct{}, maxConcurrent), busy: map[string]chan struct{}{}}
	d.store.clearPartials()
	return d
}

// Request is one dump asked for.
type Request struct {
	// Instance names the instance (web-1); or, when it is "", App's
	// first ready one is dumped.
	App, Instance string
	Kind          procdump.Kind
	// AllowExit lets a dump end the process (a Go program's stacks).
	AllowExit bool
	// By names who asked, for the events and the meta.
	By string
}

// Error is a dump refused before it began; Status is the HTTP status
// the admin API answers with.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Take takes the dump r asks for and keeps it.
func (d *Dumper) Take(ctx context.Context, r Request) (Meta, error) {
	if !validKind(r.Kind) {
		return Meta{}, &Error{400, fmt.Sprintf("kind %q must be one of core, stacks, heap", r.Kind)}
	}
	app, id, in, err := d.opt.Fleet.Find(r.App, r.Instance)
	if err != nil {
		return Meta{}, err
	}
	r.App, r.Instance = app, id
	key := r.App + "/" + r.Instance
	if d.claim(key) != nil {
		return Meta{}, &Error{409, fmt.Sprintf("a dump of %s is being taken already", r.Instance)}
	}
	defer d.unclaim(key)
	select {
	case d.slots <- struct{}{}:
		defer func() { <-d.slots }()
	default:
		return Meta{}, &Error{429, fmt.Sprintf("%d dumps are being taken already; try again when one ends", maxConcurrent)}
	}
	pid := in.PID()
	if pid == 0 {
		return Meta{}, &Error{409, fmt.Sprintf("%s has no running process", r.Instance)}
	}
	// A dump that would be refused (a kind the runtime has not, a tool
	// missing, no room for a core) is refused before the instance is
	// held and drained for it.
	if err := d.check(r, pid); err != nil {
		return Meta{}, err
	}
	// Released once the outcome's event is out: the events bound the
	// time the instance was out of rotation.
	release := in.Hold()
	defer release()
	m, err := d.take(ctx, r, in, pid)
	if err != nil {
		d.emit(r, pid, telemetry.EventDumpFailed, "", fmt.Sprintf("%s of %s failed: %v", r.Kind, r.Instance, err))
		return Meta{}, err
	}
	d.emit(r, pid, telemetry.EventDump, m.Name, m.Summary())
	d.Prune()
	return m, nil
}

func (d *Dumper) check(r Request, pid int) error {
	if err := os.MkdirAll(d.opt.Dir, 0o700); err != nil {
		return fmt.Errorf("dumps: %w", err)
	}
	return d.opt.Check(r.Kind, pid, procdump.Options{AllowExit: r.AllowExit, TempDir: d.opt.Dir})
}

// take takes the dump of a held instance.
func (d *Dumper) take(ctx context.Context, r Request, in Instance, pid int) (Meta, error) {
	held := time.Now()
	d.emit(r, pid, telemetry.EventDumpStarted, string(r.Kind),
		fmt.Sprintf("%s out of rotation for a %s dump (asked by %s)", r.Instance, r.Kind, r.By))
	left := d.drain(ctx, in)
	f, err := d.store.create()
	if err != nil {
		return Meta{}, err
	}
	partial := f.Name()
	defer os.Remove(partial) // a no-op once committed under its name
	scratch, err := d.store.scratch()
	if err != nil {
		return Meta{}, err
	}
	defer os.RemoveAll(scratch)
	opt := procdump.Options{AllowExit: r.AllowExit, TempDir: scratch, Timeout: MaxTime}
	if r.Kind == procdump.KindStacks && r.AllowExit {
		out := in.Output()
		defer out.Close()
		opt.Output = func() (io.Reader, error) { return out, nil }
	}
	drained := time.Since(held)
	res, err := d.opt.Take(ctx, r.Kind, pid, f, opt)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("dumps: %w", cerr)
	}
	if err != nil {
		if res.Note != "" {
			err = fmt.Errorf("%w; %s", err, res.Note)
		}
		return Meta{}, err
	}
	st, err := os.Stat(partial)
	if err != nil {
		return Meta{}, fmt.Errorf("dumps: %w", err)
	}
	now := time.Now().UTC()
	m := Meta{
		Name: d.store.freeName(fmt.Sprintf("%s-%s-%s", r.Instance, r.Kind, now.Format("20060102-150405.000")), res.Format),
		App:  r.App, Instance: r.Instance, PID: pid, Kind: string(r.Kind), Runtime: string(res.Runtime), Tool: res.Tool,
		Exe: res.Exe, BuildID: res.BuildID, Size: st.Size(), PausedMS: res.Paused.Milliseconds(),
		DrainedMS: drained.Milliseconds(), InflightAtStart: left, Ended: res.Ended, Note: res.Note, Created: now, By: r.By,
	}
	if err := d.store.commit(partial, m); err != nil {
		return Meta{}, err
	}
	return m, nil
}

// drain waits, within drain_timeout, for the held instance's requests
// to end, and returns how many are still running.
func (d *Dumper) drain(ctx context.Context, in Instance) int64 {
	deadline := time.Now().Add(d.opt.DrainTimeout)
	t := time.NewTicker(drainPoll)
	defer t.Stop()
	for {
		n := in.Inflight()
		if n == 0 || !time.Now().Before(deadline) {
			return n
		}
		select {
		case <-ctx.Done():
			return in.Inflight()
		case <-t.C:
		}
	}
}

// claim marks key as being dumped; when it is already, it returns the
// channel that closes when that dump ends.
func (d *Dumper) claim(key string) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ch, ok := d.busy[key]; ok {
		return ch
	}
	d.busy[key] = make(chan struct{})
	return nil
}

func (d *Dumper) unclaim(key string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	close(d.busy[key])
	delete(d.busy, key)
}

// during returns the channel that closes when the dump of key under
// way ends; nil when none is.
func (d *Dumper) during(key string) <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.busy[key]
}

// List returns the dumps kept, oldest first, after applying the cap.
func (d *Dumper) List() ([]Meta, error) {
	d.Prune()
	return d.store.list()
}

// Open returns a dump's file and what is known of it; ErrNotFound for a
// name the store does not hold.
func (d *Dumper) Open(name string) (*os.File, Meta, error) { return d.store.open(name) }

// Remove deletes a dump, with a dump_removed event naming by.
func (d *Dumper) Remove(name, by string) error {
	f, m, err := d.store.open(name)
	if err != nil {
		return err
	}
	f.Close()
	if err := d.store.remove(name); err != nil {
		return err
	}
	d.opt.Events.Emit(telemetry.Event{App: m.App, Instance: m.Instance, Type: telemetry.EventDumpRemoved, Value: name,
		Trigger: "admin", Detail: fmt.Sprintf("%s removed by %s", name, by)})
	return nil
}

// Prune removes the dumps past the cap, oldest first, each with a
// dump_removed event.
func (d *Dumper) Prune() {
	dumps, err := d.store.list()
	if err != nil {
		return
	}
	l := d.opt.Limits
	for _, r := range overCap(dumps, l, time.Now()) {
		if err := d.store.remove(r.meta.Name); err != nil {
			continue
		}
		d.opt.Events.Emit(telemetry.Event{App: r.meta.App, Instance: r.meta.Instance, Type: telemetry.EventDumpRemoved,
			Value: r.meta.Name, Trigger: r.why, Detail: fmt.Sprintf("%s removed: %s", r.meta.Name, capText(r.why, l))})
	}
}

// pruneEvery is how often Run applies max_age when no dump is taken.
const pruneEvery = time.Hour

// Run applies the cap now and every hour until ctx ends, so that
// max_age holds without a dump being taken.
func (d *Dumper) Run(ctx context.Context) error {
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for {
		d.Prune()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func capText(why string, l Limits) string {
	switch why {
	case "max_age":
		return fmt.Sprintf("older than dumps.max_age (%s)", l.MaxAge)
	case "max_count":
		return fmt.Sprintf("more than dumps.max_count (%d) are kept", l.MaxCount)
	default:
		return fmt.Sprintf("the dumps kept take more than dumps.max_size (%s)", bytesText(l.MaxSize))
	}
}

func (d *Dumper) emit(r Request, pid int, typ, value, detail string) {
	d.opt.Events.Emit(telemetry.Event{App: r.App, Instance: r.Instance, PID: pid, Type: typ, Value: value, Trigger: r.By, Detail: detail})
}

// Summary says in a line what was taken, of what, and what it cost the
// process: the dump event's detail, and what gatehouse dump prints.
func (m Meta) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s of %s (pid %d, %s) by %s: %s, %s", m.Kind, m.Instance, m.PID, m.Runtime, m.Tool, m.Name, bytesText(m.Size))
	if m.PausedMS > 0 || m.Kind == string(procdump.KindCore) {
		fmt.Fprintf(&b, "; the process was paused at most %s", time.Duration(m.PausedMS)*time.Millisecond)
	}
	if m.InflightAtStart > 0 {
		fmt.Fprintf(&b, "; %d requests were still running after %s out of rotation", m.InflightAtStart, time.Duration(m.DrainedMS)*time.Millisecond)
	}
	if m.Exe != "" {
		b.WriteString("; executable " + m.Exe)
		if m.BuildID != "" {
			b.WriteString(" (build id " + m.BuildID + ")")
		}
	}
	if m.Ended {
		b.WriteString("; " + telemetry.DumpEndedProcess)
	}
	if m.Note != "" {
		b.WriteString("; " + m.Note)
	}
	return b.String()
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

func validKind(k procdump.Kind) bool {
	return k == procdump.KindCore || k == procdump.KindStacks || k == procdump.KindHeap
}

// Dump takes a dump for auto-heal's action dump (which recycles the
// instance after it, so a dump that would end the process is not
// allowed to).
//
// A dump of the instance already under way (an admin's) is waited for
// and stands for this one: recycling the instance under it would end
// the process it is reading.
func (d *Dumper) Dump(ctx context.Context, app, instance, kind, by string) error {
	_, err := d.Take(ctx, Request{App: app, Instance: instance, Kind: procdump.Kind(kind), By: by})
	var refused *Error
	if !errors.As(err, &refused) || refused.Status != http.StatusConflict {
		return err
	}
	ongoing := d.during(app + "/" + instance)
	if ongoing == nil {
		return err // not a dump under way: no process, say
	}
	select {
	case <-ongoing:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
