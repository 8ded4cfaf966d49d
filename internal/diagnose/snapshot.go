package diagnose

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/procstat"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// SnapshotFile is the state snapshot's name under data_dir.
const SnapshotFile = "state.json"

// Snapshot is the live state diagnose needs beyond the logs: what each
// instance is doing and what its processes hold.
type Snapshot struct {
	At   time.Time `json:"at"`
	Apps []AppSnap `json:"apps"`
	// AccessLog is where the access log is written, as access_log says
	// it (Load reads it from there): "" for data_dir/access.log,
	// "stdout", "off", or a path, relative to data_dir or absolute.
	AccessLog string `json:"access_log,omitempty"`
}

// AppSnap is one app's settings that findings compare against, and its
// instances.
type AppSnap struct {
	Name    string   `json:"name"`
	Command []string `json:"command,omitempty"`
	// Runtime is what the command runs (RuntimeNode, RuntimeGo, ...), ""
	// when not recognised: fixes name what applies to it.
	Runtime             string        `json:"runtime,omitempty"`
	HealthPath          string        `json:"health_path,omitempty"`
	HealthTimeout       time.Duration `json:"health_timeout"`
	RequestTimeout      time.Duration `json:"request_timeout"`
	StartTimeout        time.Duration `json:"start_timeout"`
	UpstreamIdleTimeout time.Duration `json:"upstream_idle_timeout"`
	IdleTimeout         time.Duration `json:"idle_timeout"`
	MemoryLimit         uint64        `json:"memory_limit"`
	// MaxInflight, QueueSize and HoldTimeout bound how much the app is
	// sent at once and how many wait: overload's figures.
	MaxInflight int           `json:"max_inflight,omitempty"`
	QueueSize   int           `json:"queue_size,omitempty"`
	HoldTimeout time.Duration `json:"hold_timeout,omitempty"`
	// Routes are the app's routes with the rules the edge findings
	// name, in the config's order.
	Routes    []RouteSnap    `json:"routes,omitempty"`
	Instances []InstanceSnap `json:"instances"`
}

// RouteSnap is one route's match and the rules in effect on it that
// findings name in their fixes.
type RouteSnap struct {
	Match string `json:"match"`
	// RateLimit is "10/s burst 20 key client_ip"; "" when none.
	RateLimit string `json:"rate_limit,omitempty"`
	// ForwardAuthURL and ForwardAuthTimeout are the auth service's.
	ForwardAuthURL     string        `json:"forward_auth_url,omitempty"`
	ForwardAuthTimeout time.Duration `json:"forward_auth_timeout,omitempty"`
}

// InstanceSnap is one instance's state and process statistics.
type InstanceSnap struct {
	supervisor.InstanceStatus
	Stats      *procstat.Stats `json:"stats,omitempty"`
	First      *procstat.Stats `json:"first_stats,omitempty"`
	CPUPercent float64         `json:"cpu_percent"`
	Output     []string        `json:"output,omitempty"`
}

// Apps is what a snapshot needs of the supervisor: the apps, whose
// config and instances it records.
type Apps interface {
	Apps() []*supervisor.App
}

// Take snapshots the supervisor now.
func Take(sup Apps) Snapshot {
	s := Snapshot{At: time.Now().UTC()}
	for _, a := range sup.Apps() {
		c := a.Config()
		as := AppSnap{
			Name: a.Name(), Command: c.Command, Runtime: DetectRuntime(c.Command, c.Dir), HealthPath: c.Health.Path, HealthTimeout: c.Health.Timeout.D(),
			RequestTimeout: c.RequestTimeout.D(), StartTimeout: c.StartTimeout.D(), UpstreamIdleTimeout: c.UpstreamIdleTimeout.D(),
			IdleTimeout: c.IdleTimeout.D(), MemoryLimit: uint64(c.MemoryLimit),
			MaxInflight: c.MaxInflight, QueueSize: c.QueueSize, HoldTimeout: c.HoldTimeout.D(), Routes: routeSnaps(c),
		}
		for _, in := range a.Instances() {
			as.Instances = append(as.Instances, InstanceSnap{
				InstanceStatus: in.Status(), Stats: in.Stats(), First: in.FirstStats(),
				CPUPercent: in.CPUPercent(), Output: lastN(in.Output(), 20),
			})
		}
		s.Apps = append(s.Apps, as)
	}
	return s
}

func routeSnaps(c *config.App) []RouteSnap {
	var out []RouteSnap
	for i := range c.Routes {
		r := &c.Routes[i]
		e := config.EdgeOf(c, r)
		rs := RouteSnap{Match: r.Match}
		if rl := e.RateLimit; rl != nil {
			rs.RateLimit = fmt.Sprintf("%s burst %d key %s", rl.Rate, rl.Burst, cmp.Or(rl.Key, "client_ip"))
		}
		if fa := e.ForwardAuth; fa != nil {
			rs.ForwardAuthURL, rs.ForwardAuthTimeout = fa.URL, cmp.Or(fa.Timeout.D(), 5*time.Second)
		}
		out = append(out, rs)
	}
	return out
}

func lastN(ss []string, n int) []string {
	if len(ss) > n {
		return ss[len(ss)-n:]
	}
	return ss
}

// Write stores the snapshot under dir, atomically, so that a reader never
// sees half a file. The temporary file is this write's own: during an
// upgrade the old gatehouse and its successor both write snapshots into
// the same data_dir, and one shared name would let either truncate or
// rename away the other's file mid-write. Its name carries this
// process's pid, so that the next write, in this process or another,
// removes one a crash left (see clearTemps); it is created within the
// umask, as state.json always was: the snapshot holds the apps' commands
// and their recent output.
func (s Snapshot) Write(dir string) error {
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	clearTemps(dir)
	tmp := filepath.Join(dir, fmt.Sprintf("%s%d-%d", tempPrefix, os.Getpid(), tempSeq.Add(1)))
	// O_TRUNC, not O_EXCL: a file of this name is a leftover of an
	// earlier process that had this pid (a container's gatehouse is pid
	// 1 at every start).
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, SnapshotFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write snapshot: %w", err)
	}
	return nil
}

// tempPrefix begins the name of a snapshot's temporary file:
// "state.json.tmp.PID-N".
const tempPrefix = SnapshotFile + ".tmp."

// tempSeq numbers this process's snapshot writes, whose temporary files
// are each its own.
var tempSeq atomic.Uint64

// clearTemps removes the temporary snapshot files under dir of
// processes no longer running: a gatehouse killed in the middle of a
// write (a crash, an upgrade's successor given up on) leaves its file,
// and no later write uses its name. A name whose pid does not parse is
// a leftover too. Those of running processes, this one's included, may
// be being written.
func clearTemps(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), tempPrefix)
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		if n, err := strconv.Atoi(pid); err != nil || n <= 0 || !running(n) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// running reports whether a process of pid runs (EPERM: one of another
// user's).
func running(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// ReadSnapshot loads the snapshot under dir; a missing one is empty.
func ReadSnapshot(dir string) (Snapshot, error) {
	var s Snapshot
	b, err := os.ReadFile(filepath.Join(dir, SnapshotFile))
	if os.IsNotExist(err) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read snapshot: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("parse %s: %w", SnapshotFile, err)
	}
	return s, nil
}
