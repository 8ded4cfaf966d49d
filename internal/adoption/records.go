package adoption

import (
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
	"time"

	"github.com/gatehouse/gatehouse/internal/procid"
)

// File is the record of running processes, under data_dir.
const File = "processes.json"

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

// Doc is the file's content.
type Doc struct {
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

// RunEnv is the environment variable that carries a run's token.
const RunEnv = "GATEHOUSE_RUN"

// Records keeps processes.json up to date. A nil *Records (no
// data_dir) records nothing, and its methods do nothing.
type Records struct {
	path   string
	log    *slog.Logger
	bootID string
	self   int
	selfST uint64
	// run is this run's token (see Doc.Run).
	run string
	// shared: another gatehouse runs on this data_dir; its record is left
	// as it is, and this one records nothing.
	shared bool

	// apps, if set, reports the apps' state for each write (see New).
	apps func() map[string]AppRecord
	// stopped: this gatehouse stopped cleanly (see Doc.Stopped).
	stopped bool

	mu     sync.Mutex
	procs  map[string]ProcessRecord // by app/id
	warned bool
}

// New returns the record of dataDir; nil (which records nothing)
// without a data_dir. apps, if set, reports the apps' state for each
// write; it must take no lock that a caller of Records may hold.
func New(dataDir string, log *slog.Logger, apps func() map[string]AppRecord) *Records {
	if dataDir == "" {
		return nil
	}
	r := &Records{path: filepath.Join(dataDir, File), log: log, bootID: procid.BootID(),
		self: os.Getpid(), procs: map[string]ProcessRecord{}, run: runToken(), apps: apps}
	r.selfST = procid.Of(r.self).StartTicks
	return r
}

// Shared reports whether another gatehouse owns the record (see
// TakeOver); false without a record.
func (r *Records) Shared() bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shared
}

// Started records a process that started or was adopted.
func (r *Records) Started(p ProcessRecord) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.procs[p.App+"/"+p.ID] = p
	r.writeLocked()
}

// Exited drops the record of app/id if it is still the process pid.
func (r *Records) Exited(app, id string, pid int) {
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

func (r *Records) writeLocked() {
	if r.shared {
		return
	}
	doc := Doc{BootID: r.bootID, Run: r.run, Written: time.Now().UTC(), Processes: []ProcessRecord{}, Stopped: r.stopped}
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

// Reset replaces what this run recorded by the processes it adopts, for
// Claim to write: anything recorded before (by this run, before it left
// its processes to a successor) may no longer run, and an adopted
// process stays listed between Claim and its instance's Started.
func (r *Records) Reset(adopt map[string][]ProcessRecord) {
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

// HandoverErr says why a successor could not find this run's processes
// in the record; nil when it lists them.
func (r *Records) HandoverErr() error {
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

// Claim writes the record with this gatehouse as its owner, once the
// previous run's leftovers are dealt with, and with the apps' latest
// state.
func (r *Records) Claim() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writeLocked()
}

// StoppedCleanly records that this gatehouse stopped with every process.
func (r *Records) StoppedCleanly() {
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
//
// It does not fsync. The record lists processes, which do not outlive the
// machine (a record from before a reboot is ignored by its boot id, an
// unreadable one as well), and a crash of gatehouse leaves the page cache
// intact. An fsync on a busy ext4 waits for the whole journal's data:
// seconds, once over 45 s, with the record's lock held, so that no
// instance could start or stop meanwhile.
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

// Token is this run's token; "" without a record.
func (r *Records) Token() string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.run
}

// Env is the variable every process of this run carries; "" without a
// record.
func (r *Records) Env() string {
	if r == nil {
		return ""
	}
	return RunEnv + "=" + r.run
}
