package diagnose_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/diagnose"
)

// writeDataDir writes ev's events, access entries and snapshot under dir
// as gatehouse writes them: events.log, access.log and state.json.
func writeDataDir(t *testing.T, dir string, ev *diagnose.Evidence) {
	t.Helper()
	var events, access []byte
	for _, e := range ev.Events {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		events = append(append(events, b...), '\n')
	}
	for _, a := range ev.Access {
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		access = append(append(access, b...), '\n')
	}
	if err := os.WriteFile(filepath.Join(dir, "events.log"), events, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "access.log"), access, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ev.State.Write(dir); err != nil {
		t.Fatal(err)
	}
}

// A file of the data dir that cannot be read (a state.json cut short by
// a full disk or a copy, a log that is not a file) does not make diagnose
// fail: it reports what the other files show, and a warning that names
// the file and why.
func TestUnreadableFileIsAWarningNotAFailure(t *testing.T) {
	for _, tc := range []struct {
		name  string
		file  string
		spoil func(t *testing.T, path string)
		crash bool // the crash is still found, from the other files
	}{
		{"state.json cut short", "state.json", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b[:len(b)/2], 0o644); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"state.json of the wrong shape", "state.json", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte(`{"at": 5, "apps": "web"}`), 0o644); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"events.log a directory", "events.log", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"access.log a directory", "access.log", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			ev, _, _ := crashEvidence(true)
			writeDataDir(t, dir, ev)
			tc.spoil(t, filepath.Join(dir, tc.file))
			loaded, err := diagnose.Load(dir, ev.Since)
			if err != nil {
				t.Fatalf("Load with %s unreadable: %v; want the other files' evidence", tc.file, err)
			}
			rep := diagnose.Run(loaded)
			if got := findingOf(rep, "crash", "web") != nil; got != tc.crash {
				t.Errorf("crash found: %v; want %v:\n%s", got, tc.crash, render(rep))
			}
			var warned *diagnose.Finding
			for i, f := range rep.Findings {
				if f.ID == "evidence_unreadable" && strings.Contains(f.Title, tc.file) {
					warned = &rep.Findings[i]
				}
			}
			if warned == nil {
				t.Fatalf("no evidence_unreadable finding naming %s:\n%s", tc.file, render(rep))
			}
			if warned.Severity != diagnose.Warning || len(warned.Evidence) == 0 || warned.Fix == "" || warned.Past {
				t.Errorf("evidence_unreadable: %s, past %v, evidence %q, fix %q; want a current warning saying why, with a fix",
					warned.Severity, warned.Past, warned.Evidence, warned.Fix)
			}
		})
	}
}
