package supervisor

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// processesFile is the record of running processes, under data_dir.
const processesFile = "processes.json"

// ProcessRecord is one running instance process as data_dir/processes.json
// keeps it. The file is rewritten (atomically: a temporary file renamed
// over it) every time a process starts or exits, so that after gatehouse
// was killed without a chance to stop its apps (SIGKILL, OOM killer, a
// crash), the next gatehouse started on the same data_dir knows what was
// left running.
//
// Today that next gatehouse stops those leftovers (their process group:
// SIGTERM, then SIGKILL) before it starts its own instances. The record is
// meant to let a later version ADOPT them instead: it has what an adopted
// instance needs to be served and supervised again without a restart —
// the app and instance id it ran as, the port it listens on, its restart
// count so far, when it started and with which argv — and what proves
// that a pid still names the same process: a pid is only trusted together
// with its start time in clock ticks since boot (/proc/PID/stat field 22)
// and the boot id of the file, so a reused pid is never touched. PGID is
// the process group gatehouse put it in (its own pid: Setpgid), which
// reaches the children it started.
type ProcessRecord struct {
	App  string `json:"app"`
	ID   string `json:"id"`
	PID  int    `json:"pid"`
	PGID int    `json:"pgid"`
	// StartTicks is /proc/PID/stat field 22 (starttime), in clock ticks
	// since boot.
	StartTicks uint64    `json:"start_ticks"`
	Port       int       `json:"port"`
	Restarts   int       `json:"restarts"`
	StartedAt  time.Time `json:"started_at"`
	Command    []string  `json:"command"`
	// ShimPID and ShimStartTicks name the app's parent, gatehouse's shim
	// (see package shim), which outlives gatehouse; StatusFile is where
	// it writes the app's exit status. A record without them was written
	// by a gatehouse without shims: its process can be stopped, not
	// adopted.
	ShimPID        int    `json:"shim_pid,omitempty"`
	ShimStartTicks uint64 `json:"shim_start_ticks,omitempty"`
	StatusFile     string `json:"status_file,omitempty"`
}

// processesDoc is the file's content.
type processesDoc struct {
	// BootID is /proc/sys/kernel/random/boot_id when the file was written:
	// start ticks mean nothing across a reboot.
	BootID string `json:"boot_id"`
	// Gatehouse is the gatehouse process that wrote the file.
	Gatehouse struct {
		PID        int    `json:"pid"`
		StartTicks uint64 `json:"start_ticks"`
	} `json:"gatehouse"`
	// Run is the token of the gatehouse run that wrote the file, which
	// every process it started has in its environment (GATEHOUSE_RUN):
	// a process without it is not that run's, whatever its group.
	Run       string          `json:"run"`
	Written   time.Time       `json:"written"`
	Processes []ProcessRecord `json:"processes"`
	// Apps is each app's state beyond its processes, for the gatehouse
	// that takes them over: a stop, a scale down or an idle unload made
	// at run time holds across an upgrade.
	Apps map[string]AppRecord `json:"apps,omitempty"`
	// Stopped: the gatehouse that wrote the file stopped cleanly, with
	// every process; the next one starts afresh from its config.
	Stopped bool `json:"stopped,omitempty"`
}

// AppRecord is an app's state as processes.json keeps it.
type AppRecord struct {
	// Instances is the number of instances wanted (the config's, or what
	// a scale or a stop set since).
	Instances int `json:"instances"`
	// Resume is what `gatehouse start` brings back after a stop; 0 when
	// the app was not stopped.
	Resume int `json:"resume,omitempty"`
	// Unloaded: idle-unloaded, to be started by the next request.
	Unloaded bool `json:"unloaded,omitempty"`
	// Configured is the config file's instance count then: the state
	// holds only while the file still says that (a file edited since
	// wins).
	Configured int `json:"configured"`
}

// runEnv is the environment variable that carries a run's token.
const runEnv = "GATEHOUSE_RUN"

// records keeps processes.json up to date.
type records struct {
	path   string
	log    *slog.Logger
	bootID string
	self   int
	selfST uint64
	// run is this run's token (see processesDoc.Run).
	run string
	// shared: another gatehouse runs on this data_dir; its record is left
	// as it is, and this one records nothing.
	shared bool

	// apps, if set, reports the apps' state for each write; it takes no
	// lock that a caller of records may hold.
	apps func() map[string]AppRecord
	// stopped: this gatehouse stopped cleanly (see processesDoc.Stopped).
	stopped bool

	mu     sync.Mutex
	procs  map[string]ProcessRecord // by app/id
	warned bool
}

// newRecords returns the record of dataDir; nil (which records nothing)
// without a data_dir.
func newRecords(dataDir string, log *slog.Logger) *records {
	if dataDir == "" {
		return nil
	}
	r := &records{path: filepath.Join(dataDir, processesFile), log: log, bootID: procid.BootID(),
		self: os.Getpid(), procs: map[string]ProcessRecord{}, run: runToken()}
	r.selfST = procid.Of(r.self).StartTicks
	return r
}

// isShared reports whether another gatehouse owns the record (see
// takeOver); false without a record.
func (r *records) isShared() bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shared
}

func (r *records) started(p ProcessRecord) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.procs[p.App+"/"+p.ID] = p
	r.writeLocked()
}

// exited drops the record of app/id if it is still the process pid.
func (r *records) exited(app, id string, pid int) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.procs[app+"/"+id]; !ok || p.PID != pid {
		return
	}
	delete(r.procs, app+"/"+id)
	r.writeLocked()
}

func (r *records) writeLocked() {
	if r.shared {
		return
	}
	doc := processesDoc{BootID: r.bootID, Run: r.run, Written: time.Now().UTC(), Processes: []ProcessRecord{}, Stopped: r.stopped}
	doc.Gatehouse.PID, doc.Gatehouse.StartTicks = r.self, r.selfST
	if r.apps != nil {
		doc.Apps = r.apps()
	}
	for _, p := range r.procs {
		doc.Processes = append(doc.Processes, p)
	}
	slices.SortFunc(doc.Processes, func(a, b ProcessRecord) int {
		return strings.Compare(a.App+"/"+a.ID, b.App+"/"+b.ID)
	})
	b, _ := json.MarshalIndent(doc, "", "  ")
	if err := writeAtomic(r.path, append(b, '\n')); err != nil {
		if !r.warned {
			r.warned = true
			r.log.Warn("cannot record running processes; a gatehouse killed hard could leave them running", "file", r.path, "err", err)
		}
		return
	}
	r.warned = false
}

// reset replaces what this run recorded by the processes it adopts, for
// claim to write: anything recorded before (by TakeBack's own run before
// Leave) may no longer run, and an adopted process stays listed between
// claim and its instance's started.
func (r *records) reset(adopt map[string][]ProcessRecord) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.procs)
	for _, recs := range adopt {
		for _, p := range recs {
			r.procs[p.App+"/"+p.ID] = p
		}
	}
}

// handoverErr says why a successor could not find this run's processes
// in the record; nil when it lists them.
func (r *records) handoverErr() error {
	if r == nil {
		return errors.New("no data_dir: nothing records the running processes for a new process to adopt")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case r.shared:
		return fmt.Errorf("another gatehouse uses this data_dir; %s lists its processes, not this one's", r.path)
	case r.warned:
		return fmt.Errorf("%s cannot be written: a new process would not find the running instances", r.path)
	}
	return nil
}

// claim writes the record with this gatehouse as its owner and no process
// yet, once the previous run's leftovers are dealt with.
func (r *records) claim() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writeLocked()
}

// stoppedCleanly records that this gatehouse stopped with every process.
func (r *records) stoppedCleanly() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.writeLocked()
}

// writeAtomic writes b to path through a temporary file renamed over it,
// so that a reader (or a gatehouse killed mid-write) sees the old or the
// new content, never a part.
func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp." + strconv.Itoa(os.Getpid())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err1 := f.Sync(); err == nil {
		err = err1
	}
	if err1 := f.Close(); err == nil {
		err = err1
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// runToken is a random token for this run.
func runToken() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// token is this run's token; "" without a record.
func (r *records) token() string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.run
}

// env is the variable every process of this run carries.
func (r *records) env() string {
	if r == nil {
		return ""
	}
	return runEnv + "=" + r.run
}

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

// stopLeftovers stops every process a previous run recorded and left
// running (see takeOver).
func (r *records) stopLeftovers(events *telemetry.Events) { r.takeOver(events, takeFresh, nil) }

// takeMode says whose record takeOver may take over.
type takeMode int

const (
	// takeFresh: a gatehouse starting on its own; a record whose writer
	// still runs belongs to that other gatehouse.
	takeFresh takeMode = iota
	// takeFromParent: an upgrade's successor; its parent, alive, wrote
	// the record and left its processes to it.
	takeFromParent
	// takeBack: this process left its processes to a successor that
	// failed, and takes them back, whoever wrote last.
	takeBack
)

// takeOver reads the record of the previous run on this data_dir. The
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
func (r *records) takeOver(events *telemetry.Events, mode takeMode, keep func(ProcessRecord) bool) (map[string][]ProcessRecord, map[string]AppRecord) {
	if r == nil {
		return nil, nil
	}
	if mode == takeBack && r.isShared() {
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
	var doc processesDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		r.log.Warn("ignoring an unreadable record of a previous run's processes", "file", r.path, "err", err)
		return nil, nil
	}
	if doc.BootID == "" || doc.BootID != r.bootID || (mode == takeFresh && (doc.Stopped || len(doc.Processes) == 0 && doc.Apps == nil)) {
		return nil, nil
	}
	prev := procid.ID{PID: doc.Gatehouse.PID, StartTicks: doc.Gatehouse.StartTicks}
	handedOver := mode == takeBack || (mode == takeFromParent && prev.PID == os.Getppid())
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

// stopRecorded stops what is left running of recs (see takeOver).
func (r *records) stopRecorded(events *telemetry.Events, recs []ProcessRecord, run string) {
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
		want = append(want, runEnv+"="+run)
	}
	for _, pid := range listPIDs() {
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

func listPIDs() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	var out []int
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil {
			out = append(out, pid)
		}
	}
	return out
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
