package instance

import (
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/procstat"
	"github.com/gatehouse/gatehouse/internal/sampling"
)

// Status is one instance in GET /api/status; the field names are part
// of the public contract.
type Status struct {
	ID       string `json:"id"`
	PID      int    `json:"pid"`
	Port     int    `json:"port"`
	Upstream string `json:"upstream,omitempty"`
	// Source is the dns:// or dns+srv:// entry that found the upstream;
	// empty for a process or a static upstream.
	Source    string    `json:"source,omitempty"`
	State     string    `json:"state"`
	Health    string    `json:"health"`
	Restarts  int       `json:"restarts"`
	StartedAt time.Time `json:"started_at"`
	Inflight  int64     `json:"inflight"`
	// Tunnels are the open upgraded conversations (WebSockets) among
	// Inflight.
	Tunnels  int64  `json:"tunnels"`
	RSSBytes uint64 `json:"rss_bytes"`
	// CPUPercent is the CPU use between the last two samples, in
	// percent of one core; absent until two samples were taken.
	CPUPercent *float64 `json:"cpu_percent,omitempty"`
}

// Status snapshots the instance.
func (in *Instance) Status() Status {
	in.mu.Lock()
	st := Status{
		ID: in.ID, PID: in.pid, Port: in.port, Upstream: in.upstream, Source: in.source, State: in.state.String(),
		Health: in.health, Restarts: in.restarts, StartedAt: in.startedAt.UTC(),
	}
	m := in.member
	in.mu.Unlock()
	if m != nil {
		st.Inflight, st.Tunnels = m.Inflight(), m.Tunnels()
	}
	if ps := in.Stats(); ps != nil {
		st.RSSBytes = ps.RSS
	}
	if c := in.CPUPercent(); c >= 0 {
		st.CPUPercent = &c
	}
	return st
}

// CPUPercent is the instance's CPU use between its last two samples, in
// percent of one core; -1 when unknown.
func (in *Instance) CPUPercent() float64 { return in.samples.CPUPercent(in.currentPID()) }

// FirstStats is the first sample of the instance's current process, to
// measure growth against.
func (in *Instance) FirstStats() *procstat.Stats { return in.samples.First(in.currentPID()) }

// Stats is the instance's latest process statistics, nil before the first
// sample of its current process.
func (in *Instance) Stats() *procstat.Stats { return in.samples.Latest(in.currentPID()) }

// Output is the instance's last lines of output.
func (in *Instance) Output() []string { return in.out.Tail() }

// Spec is the config the instance's process was started with.
func (in *Instance) Spec() *config.App { return in.effective() }

// Environ is the environment the instance's process was started with
// (env), for a command run in its world (gatehouse exec).
func (in *Instance) Environ() []string {
	in.mu.Lock()
	port := in.port
	in.mu.Unlock()
	return in.env(in.effective(), port)
}

// currentPID is the pid of the instance's current (or last) process.
func (in *Instance) currentPID() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.pid
}

// Running is the pid of the instance's live process (0 when none) and
// the slot of its samples (see package sampling).
func (in *Instance) Running() (int, *sampling.Slot) {
	return in.runningPID(), &in.samples
}

func (in *Instance) runningPID() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch in.state {
	case pool.Starting, pool.Ready, pool.Unhealthy, pool.Draining:
		return in.pid
	}
	return 0
}

// Inflight is the instance's in-flight request count.
func (in *Instance) Inflight() int64 {
	in.mu.Lock()
	m := in.member
	in.mu.Unlock()
	if m == nil {
		return 0
	}
	return m.Inflight()
}

// LastOutput is the instance's last lines of output, for error messages.
func (in *Instance) LastOutput() string {
	tail := in.out.Tail()
	if len(tail) == 0 {
		return ""
	}
	if len(tail) > 5 {
		tail = tail[len(tail)-5:]
	}
	return "; last output: " + strings.Join(tail, " ⏎ ")
}
