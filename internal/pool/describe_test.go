package pool

import (
	"regexp"
	"testing"
	"time"
)

// The body of a 503 after a hold says what state each member is in and for
// how long, and never a duration from the zero time ("starting for
// 498939h29m") for a member whose state time was never recorded.
func TestDescribe(t *testing.T) {
	member := func(id string, s State, ago time.Duration, note string) *Member {
		m := NewMember(id, "127.0.0.1:1")
		m.state.Store(int32(s))
		switch {
		case ago < 0:
			m.since.Store(0) // never recorded
		default:
			m.since.Store(time.Now().Add(-ago).UnixNano())
		}
		m.SetNote(note)
		return m
	}
	tests := []struct {
		name     string
		unloaded bool
		members  func() []*Member
		want     string // a regexp, anchored
		// exit, when set, is an instance's exit noted before (NoteExit).
		exit *exitNote
	}{
		{"no members", false, func() []*Member { return nil }, `no instance is running \(crashed or restarting\)`, nil},
		{"no members after an exit", false, func() []*Member { return nil },
			`no instance is running \(crashed or restarting\); the last exit: web-1 exited with code 3, 2(\.\d)?s ago`,
			&exitNote{id: "web-1", detail: "exited with code 3", at: time.Now().Add(-2 * time.Second)}},
		{"no members after an exit of unknown time", false, func() []*Member { return nil },
			`no instance is running \(crashed or restarting\); the last exit: web-1 killed by SIGKILL`,
			&exitNote{id: "web-1", detail: "killed by SIGKILL"}},
		{"unloaded", true, func() []*Member { return nil }, `the app is unloaded for idleness and is starting`, nil},
		{"new member, state never set", false, func() []*Member {
			return []*Member{NewMember("web-1", "127.0.0.1:1")}
		}, `web-1 starting for 0s`, nil},
		{"state time never recorded", false, func() []*Member {
			return []*Member{member("web-1", Starting, -1, "starting: connection refused on port 1")}
		}, `web-1 starting: starting: connection refused on port 1`, nil},
		{"starting a while", false, func() []*Member {
			return []*Member{member("web-1", Starting, 90*time.Second, "starting: connection refused on port 1")}
		}, `web-1 starting for 1m30(\.\d)?s: starting: connection refused on port 1`, nil},
		{"two members, one ejected", false, func() []*Member {
			a := member("web-1", Unhealthy, 2*time.Second, "probe: 500")
			b := member("web-2", Ready, 10*time.Second, "")
			b.Eject()
			return []*Member{a, b}
		}, `web-1 unhealthy for 2(\.\d)?s: probe: 500; web-2 ready for 10(\.\d)?s \(ejected after a connection failure\)`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New("web", 10)
			p.SetUnloaded(tt.unloaded)
			if e := tt.exit; e != nil {
				p.NoteExit(e.id, e.detail, e.at)
			}
			for _, m := range tt.members() {
				p.Add(m)
			}
			got := p.Describe()
			if !regexp.MustCompile(`^` + tt.want + `$`).MatchString(got) {
				t.Errorf("Describe() = %q, want %q", got, tt.want)
			}
			if regexp.MustCompile(`\d{3,}h`).MatchString(got) {
				t.Errorf("Describe() = %q: a duration from the zero time", got)
			}
		})
	}
}
