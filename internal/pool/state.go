package pool

import (
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
)

// State is a member's lifecycle state. The names are public (status JSON).
type State int32

const (
	Starting State = iota
	Ready
	Unhealthy
	Draining
	Stopped
	Crashed
)

var stateNames = [...]string{"starting", "ready", "unhealthy", "draining", "stopped", "crashed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// states lists every state, in declaration order.
var states = []State{Starting, Ready, Unhealthy, Draining, Stopped, Crashed}

// transitions is the one table of an instance's lifecycle: for each state,
// the states it may move to. The supervisor sets states only along these
// edges; package doc draws them, and TestDiagramMatchesTable checks that
// the drawing's edge list is this table. Setting a state to itself is
// always allowed (a repeated publish, not a transition) and not listed.
var transitions = map[State][]State{
	// The startup check passed; an external upstream's first probes
	// failed (unhealthy_threshold); the process exited, was not ready
	// within start_timeout or could not be started; or a stop or hard
	// restart came while it was starting.
	Starting: {Ready, Unhealthy, Crashed, Draining},
	// unhealthy_threshold failed probes; the process exited; a stop.
	Ready: {Unhealthy, Crashed, Draining},
	// healthy_threshold passed probes; the process exited; a stop.
	Unhealthy: {Ready, Crashed, Draining},
	// The back-off ended (or a restart was asked for): start again under
	// the same id; or the instance was stopped during the back-off, when
	// there is no process to drain.
	Crashed: {Starting, Stopped},
	// The process is gone: stopped for good; or a hard restart (gatehouse
	// restart) starts it again under the same id.
	Draining: {Stopped, Starting},
	// Stopped is final: a new process under a new id is a new instance.
	Stopped: nil,
}

// CanTransition reports whether a member or instance may move from one
// state to another. A state may always be set to itself.
func CanTransition(from, to State) bool {
	if from == to {
		return true
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Transitions returns the states from may move to, in table order.
func Transitions(from State) []State {
	return append([]State(nil), transitions[from]...)
}

// IllegalTransitionFunc sees a state change that the transition table does
// not allow. The change has been made anyway (a member's state is what the
// supervisor last published); the call is there to make the programming
// error loud.
type IllegalTransitionFunc func(id string, from, to State)

var illegal atomic.Pointer[IllegalTransitionFunc]

// logIllegal is the default IllegalTransitionFunc: an error-level log line
// with the caller that set the state.
func logIllegal(id string, from, to State) {
	slog.Error("pool: illegal state transition (programming error)",
		"member", id, "from", from.String(), "to", to.String(), "caller", callers())
}

func callers() string {
	pcs := make([]uintptr, 8)
	n := runtime.Callers(4, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var out []string
	for {
		f, more := frames.Next()
		out = append(out, fmt.Sprintf("%s:%d", f.Function, f.Line))
		if !more || len(out) == 4 {
			break
		}
	}
	return strings.Join(out, " ← ")
}

// SetIllegalTransitionFunc replaces what is done with an illegal
// transition (by default, an error log line); nil restores the default.
// Tests use it to fail on one. It returns a function that restores the
// previous one.
func SetIllegalTransitionFunc(f IllegalTransitionFunc) (restore func()) {
	var p *IllegalTransitionFunc
	if f != nil {
		p = &f
	}
	old := illegal.Swap(p)
	return func() { illegal.Store(old) }
}

// CheckTransition reports an illegal transition of the member or instance
// id to the IllegalTransitionFunc, and returns whether it was legal. Every
// place that sets a lifecycle state calls it: Member.SetState, and the
// supervisor for the instance state it keeps itself.
func CheckTransition(id string, from, to State) bool {
	if CanTransition(from, to) {
		return true
	}
	if f := illegal.Load(); f != nil {
		(*f)(id, from, to)
	} else {
		logIllegal(id, from, to)
	}
	return false
}

// TransitionTable formats the table as the edge list package doc shows,
// one line per state: "starting  → ready, crashed, draining".
func TransitionTable() string {
	var b strings.Builder
	for _, from := range states {
		to := transitions[from]
		names := make([]string, len(to))
		for i, s := range to {
			names[i] = s.String()
		}
		list := strings.Join(names, ", ")
		if list == "" {
			list = "(final)"
		}
		fmt.Fprintf(&b, "%-9s → %s\n", from, list)
	}
	return b.String()
}
