package gateway

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// An access entry waiting for an exit is written once, on synctest's
// clock: amended at the exit's moment if it comes within exitNoteWait
// (or, for a process dying then, exitNoteDyingWait more), as it is at the
// window's end if it does not, and at once by close; settle returns when
// it is written.
func TestLateExitEntryWrittenOnceWithinItsWindow(t *testing.T) {
	for _, tc := range []struct {
		name string
		// exitAt: when the exit is recorded after the entry is added;
		// 0 for never. closeAt: when close is called; 0 for never.
		exitAt, closeAt time.Duration
		// dying: the process is on its way out when the window ends;
		// removed: its member left the pool first (a stop of gatehouse's
		// own, which records no exit).
		dying, removed bool
		wantAt         time.Duration
		wantDetail     string
		wantFailed     int64
	}{
		{name: "exit within the window", exitAt: 300 * time.Millisecond, wantAt: 300 * time.Millisecond,
			wantDetail: "closed; instance web-1 (pid 7) killed by SIGKILL", wantFailed: 1},
		{name: "no exit", wantAt: exitNoteWait, wantDetail: "closed"},
		{name: "exit after the window", exitAt: exitNoteWait + time.Millisecond, wantAt: exitNoteWait, wantDetail: "closed"},
		{name: "closed first", closeAt: 100 * time.Millisecond, exitAt: 200 * time.Millisecond, wantAt: 100 * time.Millisecond, wantDetail: "closed"},
		{name: "dying, exit after the window", dying: true, exitAt: exitNoteWait + 3*time.Second, wantAt: exitNoteWait + 3*time.Second,
			wantDetail: "closed; instance web-1 (pid 7) killed by SIGKILL", wantFailed: 1},
		{name: "dying, no exit", dying: true, wantAt: exitNoteWait + exitNoteDyingWait, wantDetail: "closed"},
		{name: "dying, closed in the longer wait", dying: true, closeAt: 2 * exitNoteWait, wantAt: 2 * exitNoteWait, wantDetail: "closed"},
		{name: "dying, stopped by gatehouse", dying: true, removed: true, wantAt: exitNoteWait, wantDetail: "closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := pool.NewMember("web-1", "127.0.0.1:1")
				m.SetPID(7)
				if tc.removed {
					p := pool.New("web", 10)
					p.Add(m)
					p.Remove(m)
				}
				var mu sync.Mutex
				var written []telemetry.AccessEntry
				var writtenAt []time.Duration
				start := time.Now()
				l := newLateExits(func(e *telemetry.AccessEntry) {
					mu.Lock()
					written = append(written, *e)
					writtenAt = append(writtenAt, time.Since(start))
					mu.Unlock()
				})
				l.lives = func(pid int) bool {
					if pid != 7 {
						t.Errorf("lives(%d); want the entry's pid, 7", pid)
					}
					return !tc.dying
				}
				l.add(&telemetry.AccessEntry{RequestID: "r1", Detail: "closed", RetriedCauses: []string{"upstream_reset"}}, m, 7)
				exit := &pool.Exit{PID: 7, Detail: "killed by SIGKILL", Signal: "SIGKILL"}
				if tc.closeAt > 0 {
					time.AfterFunc(tc.closeAt, l.close)
				}
				if tc.exitAt > 0 {
					time.AfterFunc(tc.exitAt, func() { m.SetExit(exit) })
				}
				// settle returns once the entry is written.
				const longest = exitNoteWait + exitNoteDyingWait
				l.settle(2 * longest)
				settledAt := time.Since(start)
				time.Sleep(2 * longest)
				synctest.Wait()
				if settledAt != tc.wantAt {
					t.Errorf("settle returned after %v; want %v, when the entry was written", settledAt, tc.wantAt)
				}
				if len(written) != 1 {
					t.Fatalf("%d entries written: %+v; want 1", len(written), written)
				}
				e := written[0]
				if writtenAt[0] != tc.wantAt || e.Detail != tc.wantDetail || exit.Failed.Load() != tc.wantFailed ||
					len(e.RetriedCauses) != 1 {
					t.Errorf("written after %v with detail %q, retried %v, the exit counting %d; want after %v, %q, [upstream_reset], %d",
						writtenAt[0], e.Detail, e.RetriedCauses, exit.Failed.Load(), tc.wantAt, tc.wantDetail, tc.wantFailed)
				}
			})
		})
	}
}
