package pool

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// The table covers every state, names only states, keeps stopped final,
// and lets every state end stopped: an instance can always be stopped.
func TestTransitionTableIsComplete(t *testing.T) {
	for _, from := range states {
		if _, ok := transitions[from]; !ok {
			t.Errorf("%s has no entry in the transition table", from)
		}
		for _, to := range transitions[from] {
			if !slices.Contains(states, to) {
				t.Errorf("%s → %d: not a state", from, to)
			}
			if to == from {
				t.Errorf("%s → %s listed: self-transitions are implicit", from, to)
			}
		}
		// Walk the table: stopped is reachable from every state.
		seen := map[State]bool{from: true}
		todo := []State{from}
		for len(todo) > 0 {
			s := todo[0]
			todo = todo[1:]
			for _, n := range transitions[s] {
				if !seen[n] {
					seen[n] = true
					todo = append(todo, n)
				}
			}
		}
		if !seen[Stopped] {
			t.Errorf("stopped is not reachable from %s", from)
		}
	}
	if len(transitions[Stopped]) != 0 {
		t.Errorf("stopped → %v: stopped must be final", transitions[Stopped])
	}
	// The edges members take in practice, and the ones the supervisor needs.
	for _, e := range [][2]State{
		{Starting, Ready}, {Starting, Crashed}, {Starting, Draining},
		{Starting, Unhealthy}, // an external upstream whose first probes fail
		{Ready, Unhealthy}, {Ready, Crashed}, {Ready, Draining},
		{Unhealthy, Ready}, {Unhealthy, Crashed}, {Unhealthy, Draining},
		{Crashed, Starting}, {Crashed, Stopped},
		{Draining, Stopped}, {Draining, Starting},
	} {
		if !CanTransition(e[0], e[1]) {
			t.Errorf("CanTransition(%s, %s) = false, want true", e[0], e[1])
		}
	}
	for _, e := range [][2]State{
		{Ready, Starting}, {Ready, Stopped}, {Stopped, Starting}, {Stopped, Ready},
		{Crashed, Ready}, {Draining, Ready}, {Crashed, Draining},
	} {
		if CanTransition(e[0], e[1]) {
			t.Errorf("CanTransition(%s, %s) = true, want false", e[0], e[1])
		}
	}
	for _, s := range states {
		if !CanTransition(s, s) {
			t.Errorf("CanTransition(%s, %s) = false: a repeated publish is allowed", s, s)
		}
	}
}

// The edge list in the package doc is the table, so the drawing above it
// is checked against the same edges by whoever edits either.
func TestDiagramMatchesTable(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "//\t")
		if ok && strings.Contains(rest, " → ") {
			got = append(got, rest)
		}
	}
	want := strings.Split(strings.TrimSuffix(TransitionTable(), "\n"), "\n")
	if !slices.Equal(got, want) {
		t.Errorf("doc.go's edge list:\n%s\nthe table (TransitionTable):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Every state the table knows is drawn.
	for _, s := range states {
		if strings.Count(string(b), s.String()) < 2 {
			t.Errorf("doc.go's drawing does not show %s", s)
		}
	}
}

// SetState reports an illegal transition and still makes it; a legal one,
// or a repeated publish, is not reported.
func TestSetStateReportsIllegalTransitions(t *testing.T) {
	type report struct {
		id       string
		from, to State
	}
	var got []report
	restore := SetIllegalTransitionFunc(func(id string, from, to State) { got = append(got, report{id, from, to}) })
	defer restore()
	m := NewMember("web-1", "127.0.0.1:1")
	m.SetState(Starting) // repeated publish
	m.SetState(Ready)
	m.SetState(Ready)
	m.SetState(Unhealthy)
	m.SetState(Ready)
	m.SetState(Draining)
	m.SetState(Stopped)
	if len(got) != 0 {
		t.Fatalf("legal transitions reported: %v", got)
	}
	m.SetState(Ready) // stopped is final
	if want := []report{{"web-1", Stopped, Ready}}; !slices.Equal(got, want) {
		t.Errorf("reports %v, want %v", got, want)
	}
	if m.State() != Ready {
		t.Errorf("state %s after an illegal SetState(ready); the change is made anyway", m.State())
	}
}
