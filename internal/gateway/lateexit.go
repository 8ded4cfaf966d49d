package gateway

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// A request whose connection to its instance broke (upstream_reset,
// connect_refused, bad_response) may have failed because the instance's
// process died: its access entry then names the exit ("; instance web-1
// (pid 4242) killed by SIGKILL", what diagnose ties requests to crashes
// by), and the exit counts it (Exit.Failed, the exit event's "requests
// failed with it"). The connection breaks a moment before the supervisor
// has reaped the process, and the client's answer does not wait for
// that: the entry does. lateExits holds it until the exit is recorded,
// or writes it as it is once exitNoteWait has passed without one and the
// process lives on (the app closed the connection).

// exitNoteWait is how long an access entry waits for its instance's exit
// to be recorded. Only the log line waits, so it can be generous: the
// supervisor records an exit once the process's output is read to its
// end, which a busy machine may take a while over.
const exitNoteWait = time.Second

// exitNoteDyingWait is how much longer it waits when, at the end of
// exitNoteWait, the process is exiting, dead or gone: its exit is then
// certain, only late (over a second on a busy two-core machine).
const exitNoteDyingWait = 10 * time.Second

// MaxAccessWait is the longest an access entry waits for its instance's
// exit: a bound for SettleAccess.
const MaxAccessWait = exitNoteWait + exitNoteDyingWait

// lateExits is the one owner of the access entries waiting for an exit:
// each is written exactly once, by whichever comes first of the exit
// (amended), its window's end, or Close (as it is).
type lateExits struct {
	// emit writes an entry: the access log and the observer.
	emit func(*telemetry.AccessEntry)
	wait time.Duration
	// lives reports whether process pid runs on, not exiting:
	// processLives, but for tests.
	lives func(pid int) bool
	// after starts an entry's window: time.AfterFunc, but for tests.
	after func(time.Duration, func()) (stop func() bool)

	mu      sync.Mutex
	pending map[*lateEntry]struct{}
	// settled is closed when pending empties; nil while it is empty.
	settled chan struct{}
	closed  bool
}

// lateEntry is one access entry waiting for the exit of the process pid
// behind member m.
type lateEntry struct {
	e       telemetry.AccessEntry
	m       *pool.Member
	pid     int
	unwatch func() bool
	stop    func() bool
	// dying is set when the window was lengthened for a dying process.
	dying bool
}

func newLateExits(emit func(*telemetry.AccessEntry)) *lateExits {
	return &lateExits{emit: emit, wait: exitNoteWait, lives: processLives, pending: map[*lateEntry]struct{}{},
		after: func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }}
}

// add holds a copy of e until the exit of process pid of m. If the exit
// is already recorded, e is amended and written now.
func (l *lateExits) add(e *telemetry.AccessEntry, m *pool.Member, pid int) {
	le := &lateEntry{e: *e, m: m, pid: pid}
	// The retried causes are the pooled request state's.
	le.e.RetriedCauses = slices.Clone(e.RetriedCauses)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.emit(&le.e)
		return
	}
	if len(l.pending) == 0 {
		l.settled = make(chan struct{})
	}
	l.pending[le] = struct{}{}
	l.mu.Unlock()
	unwatch := m.OnExit(pid, func(x *pool.Exit) { l.exited(le, x) })
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.pending[le]; !ok {
		// Written already: by the exit, just now, or by Close.
		unwatch()
		return
	}
	le.unwatch = unwatch
	le.stop = l.after(l.wait, func() { l.expire(le) })
}

// takeLocked removes le from the pending entries and reports whether it
// was there: the caller writes it.
func (l *lateExits) takeLocked(le *lateEntry) bool {
	if _, ok := l.pending[le]; !ok {
		return false
	}
	delete(l.pending, le)
	if len(l.pending) == 0 {
		close(l.settled)
		l.settled = nil
	}
	return true
}

// exited amends le with the exit x and writes it, and counts the request
// in the exit. It runs on the supervisor's goroutine, in SetExit: before
// the exit's event reads the count.
func (l *lateExits) exited(le *lateEntry, x *pool.Exit) {
	l.mu.Lock()
	ok := l.takeLocked(le)
	stop := le.stop
	l.mu.Unlock()
	if !ok {
		return
	}
	if stop != nil {
		stop()
	}
	x.Failed.Add(1)
	le.e.Detail += exitNote(le.m, x)
	l.emit(&le.e)
}

// expire ends le's window: no exit came within it. If the process is
// dying, le waits exitNoteDyingWait more, once; else it is written as it
// is. A member that left its pool with no exit recorded was stopped by
// gatehouse (a restart, a drain, an unload), whose stops record none:
// nothing more will come.
func (l *lateExits) expire(le *lateEntry) {
	lives := le.m.Removed() || l.lives(le.pid) // a read of /proc: outside the lock
	l.mu.Lock()
	if _, ok := l.pending[le]; !ok {
		l.mu.Unlock()
		return
	}
	if !lives && !le.dying {
		le.dying = true
		le.stop = l.after(exitNoteDyingWait, func() { l.expire(le) })
		l.mu.Unlock()
		return
	}
	l.takeLocked(le)
	unwatch := le.unwatch
	l.mu.Unlock()
	unwatch()
	l.emit(&le.e)
}

// processLives reports whether process pid runs on: on Linux, that
// /proc shows it and not on its way out (procid.Stat.Exiting); elsewhere,
// where that cannot be seen, always.
func processLives(pid int) bool {
	if runtime.GOOS != "linux" || pid <= 0 {
		return true
	}
	st, err := procid.ReadStat(pid)
	return err == nil && !st.Exiting()
}

// settle waits until no entry is pending, or until timeout.
func (l *lateExits) settle(timeout time.Duration) {
	l.mu.Lock()
	ch := l.settled
	l.mu.Unlock()
	if ch == nil {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// close writes every pending entry as it is, and any later one at once.
func (l *lateExits) close() {
	l.mu.Lock()
	l.closed = true
	var all []*lateEntry
	for le := range l.pending {
		all = append(all, le)
		l.takeLocked(le)
	}
	l.mu.Unlock()
	for _, le := range all {
		if le.stop != nil {
			le.stop()
		}
		if le.unwatch != nil {
			le.unwatch()
		}
		l.emit(&le.e)
	}
}

// exitNote is what an attempt's detail says of the exit it failed with.
func exitNote(m *pool.Member, x *pool.Exit) string {
	return fmt.Sprintf("; instance %s (pid %d) %s", m.ID, x.PID, x.Detail)
}
