package adoption

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Events receives the stop event of each leftover stopped.
type Events interface {
	Emit(telemetry.Event)
}

// OwnsGroup reports whether the process group of rec, a process of the
// run with token run, still is its own: a member carries rec's identity
// and run token (see findLeftover). It is how an adopted process's group
// is known to be safe to signal once its leader is gone.
func OwnsGroup(rec ProcessRecord, run string) bool { return findLeftover(rec, run) != nil }

// leftover is a recorded process group found still running.
type leftover struct {
	rec ProcessRecord
	// procs are its live processes (pid → start ticks), leader first if
	// it lives.
	procs  []procid.ID
	leader bool
}

// leftoverTermWait bounds the wait between SIGTERM and SIGKILL for the
// leftovers of a previous run.
const leftoverTermWait = 3 * time.Second

// StopLeftovers stops every process a previous run recorded and left
// running (see TakeOver).
func (r *Records) StopLeftovers(events Events) { r.TakeOver(events, Fresh, nil) }

// Mode says whose record TakeOver may take over.
type Mode int

const (
	// Fresh: a gatehouse starting on its own; a record whose writer
	// still runs belongs to that other gatehouse.
	Fresh Mode = iota
	// FromParent: an upgrade's successor; its parent, alive, wrote
	// the record and left its processes to it.
	FromParent
	// Back: this process left its processes to a successor that
	// failed, and takes them back, whoever wrote last.
	Back
)

// TakeOver reads the record of the previous run on this data_dir. The
// processes keep accepts are returned, by app, for the caller to adopt,
// and this run carries on that run's token, which they have in their
// environment. The others are stopped: each one's process group gets
// SIGTERM, then SIGKILL after leftoverTermWait. A recorded process
// counts only if its pid is alive with the recorded start time (pids are
// reused); if it is gone (sh killed with gatehouse, its child left
// behind), a process of its group counts if it started after it and its
// environment says it is that instance (GATEHOUSE_INSTANCE, GATEHOUSE_APP,
// which every instance's processes inherit). While a group has a member
// its id cannot be reused, so such a member proves the group is the old
// one. It reports what it did to the log and as stop events.
//
// The apps' recorded state is returned too when the record was left to
// this gatehouse (an upgrade, or a gatehouse that died with processes
// running); nil after a clean stop, whose state a new gatehouse does not
// inherit.
func (r *Records) TakeOver(events Events, mode Mode, keep func(ProcessRecord) bool) (map[string][]ProcessRecord, map[string]AppRecord) {
	if r == nil {
		return nil, nil
	}
	if mode == Back && r.Shared() {
		// This gatehouse never owned the record: all it lists is the
		// other gatehouse's, which runs and supervises it.
		return nil, nil
	}
	b, err := os.ReadFile(r.path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("cannot read the record of a previous run's processes", "file", r.path, "err", err)
		}
		return nil, nil
	}
	var doc Doc
	if err := json.Unmarshal(b, &doc); err != nil {
		r.log.Warn("ignoring an unreadable record of a previous run's processes", "file", r.path, "err", err)
		return nil, nil
	}
	if doc.BootID == "" || doc.BootID != r.bootID || (mode == Fresh && (doc.Stopped || len(doc.Processes) == 0 && doc.Apps == nil)) {
		return nil, nil
	}
	prev := procid.ID{PID: doc.Gatehouse.PID, StartTicks: doc.Gatehouse.StartTicks}
	handedOver := mode == Back || (mode == FromParent && prev.PID == os.Getppid())
	if prev.PID > 0 && prev.Alive() && !handedOver {
		// Another gatehouse, or this one (a second supervisor in one
		// process, as tests run), still runs them: its record is its own.
		r.log.Warn("another gatehouse uses this data_dir; its processes and its record of them are left alone",
			"pid", prev.PID, "file", r.path)
		r.mu.Lock()
		r.shared = true
		r.mu.Unlock()
		return nil, nil
	}
	adopt := map[string][]ProcessRecord{}
	var rest []ProcessRecord
	for _, rec := range doc.Processes {
		if keep != nil && keep(rec) {
			adopt[rec.App] = append(adopt[rec.App], rec)
		} else {
			rest = append(rest, rec)
		}
	}
	if len(adopt) > 0 && doc.Run != "" {
		r.mu.Lock()
		r.run = doc.Run
		r.mu.Unlock()
	}
	r.stopRecorded(events, rest, doc.Run)
	return adopt, doc.Apps
}

// stopRecorded stops what is left running of recs (see TakeOver).
func (r *Records) stopRecorded(events Events, recs []ProcessRecord, run string) {
	var found []*leftover
	for _, rec := range recs {
		if l := findLeftover(rec, run); l != nil {
			found = append(found, l)
		}
	}
	if len(found) == 0 {
		return
	}
	for _, l := range found {
		r.log.Warn("stopping a process left running by a previous gatehouse on this data_dir",
			"app", l.rec.App, "instance", l.rec.ID, "pid", l.rec.PID, "pgid", l.rec.PGID, "processes", len(l.procs))
		syscall.Kill(-l.rec.PGID, syscall.SIGTERM)
	}
	deadline := time.Now().Add(leftoverTermWait)
	for time.Now().Before(deadline) && anyAlive(found) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, l := range found {
		how := "exited after SIGTERM"
		if l.anyAlive() {
			how = fmt.Sprintf("did not exit within %s of SIGTERM; sent SIGKILL", leftoverTermWait)
			syscall.Kill(-l.rec.PGID, syscall.SIGKILL)
			for _, p := range l.procs {
				if p.Alive() {
					syscall.Kill(p.PID, syscall.SIGKILL)
				}
			}
		}
		pids := make([]string, len(l.procs))
		for i, p := range l.procs {
			pids[i] = strconv.Itoa(p.PID)
		}
		leader := "gone"
		if l.leader {
			leader = "alive"
		}
		detail := fmt.Sprintf("left running by a previous gatehouse (killed without stopping its apps): process group %d "+
			"(recorded pid %d %s, processes %s, port %d, started %s); %s",
			l.rec.PGID, l.rec.PID, leader, strings.Join(pids, ", "), l.rec.Port, l.rec.StartedAt.Local().Format(time.RFC3339), how)
		r.log.Warn("stopped a leftover process group", "app", l.rec.App, "instance", l.rec.ID, "detail", detail)
		if events != nil {
			events.Emit(telemetry.Event{App: l.rec.App, Instance: l.rec.ID, PID: l.rec.PID, Type: telemetry.EventStop, Detail: detail})
		}
	}
	// Give SIGKILL a moment: the caller starts instances next.
	deadline = time.Now().Add(time.Second)
	for time.Now().Before(deadline) && anyAlive(found) {
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *leftover) anyAlive() bool {
	for _, p := range l.procs {
		if p.Alive() {
			return true
		}
	}
	return false
}

func anyAlive(ls []*leftover) bool {
	for _, l := range ls {
		if l.anyAlive() {
			return true
		}
	}
	return false
}

// findLeftover returns what is left running of rec, or nil. It signals
// nothing it cannot prove is rec's: the group must be the one gatehouse
// made (led by rec's pid), never gatehouse's own; a live pid with another
// start time means the pid was reused, so the group is a new one; and
// every member must carry rec's identity and the run token of the
// gatehouse that recorded it (run; "" for a file without one).
func findLeftover(rec ProcessRecord, run string) *leftover {
	if rec.PID <= 1 || rec.PGID != rec.PID || rec.StartTicks == 0 || rec.PGID == syscall.Getpgrp() {
		return nil
	}
	l := &leftover{rec: rec}
	if st, err := procid.ReadStat(rec.PID); err == nil && st.State != 'Z' {
		if st.StartTicks != rec.StartTicks || st.PGRP != rec.PGID {
			return nil // the pid was reused (or left its group): not ours
		}
		l.leader = true
		l.procs = append(l.procs, procid.ID{PID: rec.PID, StartTicks: rec.StartTicks})
	}
	want := []string{"GATEHOUSE_INSTANCE=" + rec.ID, "GATEHOUSE_APP=" + rec.App}
	if run != "" {
		want = append(want, RunEnv+"="+run)
	}
	for _, pid := range procid.List() {
		if pid == rec.PID {
			continue
		}
		st, err := procid.ReadStat(pid)
		if err != nil || st.PGRP != rec.PGID || st.State == 'Z' || st.StartTicks < rec.StartTicks {
			continue
		}
		if !environHas(pid, want) {
			continue
		}
		l.procs = append(l.procs, procid.ID{PID: pid, StartTicks: st.StartTicks})
	}
	if len(l.procs) == 0 {
		return nil
	}
	return l
}

// environHas reports whether process pid's environment has every one of
// the kvs.
func environHas(pid int, kvs []string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	have := map[string]bool{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		have[string(kv)] = true
	}
	for _, kv := range kvs {
		if !have[kv] {
			return false
		}
	}
	return true
}
