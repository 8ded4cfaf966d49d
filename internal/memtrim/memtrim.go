// Package memtrim gives memory back to the operating system when gatehouse
// goes quiet after a burst. Go's collector runs when the heap doubles, and
// its scavenger returns free pages slowly: after a burst (thousands of
// connections opened, then held idle) the garbage of the burst and the
// pages it freed stay resident for minutes, until the runtime's two-minute
// forced collection. A Trimmer watches the runtime's own counters and,
// once allocation and requests have been quiet for a few seconds while
// enough garbage or free memory is held, collects and returns it at once
// (debug.FreeOSMemory). It never acts under load: a trim empties every
// sync.Pool, and a busy process's collector keeps up on its own.
package memtrim

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Defaults of Options.
const (
	DefaultQuiet     = 3 * time.Second
	DefaultQuietRate = 256 << 10 // bytes allocated per second
	DefaultMinHeld   = 4 << 20
	DefaultMinGap    = 30 * time.Second
)

// Options tune a Trimmer; zero fields take the defaults.
type Options struct {
	// Quiet is how long allocation must stay under QuietRate (bytes per
	// second, on average) before a trim. Default 3s, 256 KiB/s.
	Quiet     time.Duration
	QuietRate uint64
	// MinHeld is how much garbage plus free, unreturned heap makes a
	// trim worth it. Default 4 MiB.
	MinHeld uint64
	// MinGap is the least time between two trims. Default 30s.
	MinGap time.Duration
	// Trim returns the memory; when nil, a collection, then
	// debug.FreeOSMemory (tests count).
	Trim func()
	// Busy, if set, reports whether requests are being served: a busy
	// process is never trimmed, however little it allocates (gatehouse's
	// request path allocates next to nothing, so allocation alone would
	// take a steady 150 requests a second for quiet).
	Busy func() bool
}

// Trimmer watches the runtime and trims; Run drives it.
type Trimmer struct {
	opts Options
	// read returns the bytes allocated so far and the bytes held
	// (garbage not yet collected, and free heap not yet returned).
	read    func() (allocs, held uint64)
	samples []metrics.Sample
	// allocs are the cumulative bytes allocated at each of the last
	// ticks, oldest first.
	allocs   []uint64
	lastTrim time.Time
}

// New returns a Trimmer with opts.
func New(opts Options) *Trimmer {
	if opts.Quiet <= 0 {
		opts.Quiet = DefaultQuiet
	}
	if opts.QuietRate == 0 {
		opts.QuietRate = DefaultQuietRate
	}
	if opts.MinHeld == 0 {
		opts.MinHeld = DefaultMinHeld
	}
	if opts.MinGap <= 0 {
		opts.MinGap = DefaultMinGap
	}
	if opts.Trim == nil {
		opts.Trim = trim
	}
	t := &Trimmer{opts: opts, samples: []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
	}}
	t.read = t.readRuntime
	return t
}

// readRuntime reads the runtime's counters.
func (t *Trimmer) readRuntime() (allocs, held uint64) {
	metrics.Read(t.samples)
	objects, live, free := t.samples[1].Value.Uint64(), t.samples[2].Value.Uint64(), t.samples[3].Value.Uint64()
	held = free
	if objects > live {
		held += objects - live
	}
	return t.samples[0].Value.Uint64(), held
}

// trim collects twice, the second time returning the memory: what
// sync.Pools held survives one collection (as their victim cache) and is
// dropped by the next.
func trim() {
	runtime.GC()
	debug.FreeOSMemory()
}

// tick is how often the runtime's counters are read.
const tick = time.Second

// Run checks once a second until ctx ends.
func (t *Trimmer) Run(ctx context.Context) {
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tk.C:
			t.Check(now)
		}
	}
}

// Check reads the runtime's counters and trims when allocation has been
// quiet for Quiet and at least MinHeld is held; it reports whether it
// trimmed.
func (t *Trimmer) Check(now time.Time) bool {
	allocs, held := t.read()
	keep := int(t.opts.Quiet/tick) + 1
	t.allocs = append(t.allocs, allocs)
	if len(t.allocs) > keep {
		t.allocs = t.allocs[len(t.allocs)-keep:]
	}
	if len(t.allocs) < keep || now.Sub(t.lastTrim) < t.opts.MinGap {
		return false
	}
	quiet := allocs-t.allocs[0] <= t.opts.QuietRate*uint64(t.opts.Quiet/time.Second)
	if !quiet || held < t.opts.MinHeld || t.opts.Busy != nil && t.opts.Busy() {
		return false
	}
	t.opts.Trim()
	t.lastTrim = now
	return true
}
