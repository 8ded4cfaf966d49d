package process

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Every line of an instance's log file starts with the time its first
// byte was read, however the process's writes cut it, and a line kept as
// one when its process is gone ends in the file too.
func TestOutputStampsEachLineInTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web-1.log")
	o := NewOutput("web", "web-1", path, FileOptions{}, nil, nil)
	w := o.Process()
	w.SetPID(42)
	for _, b := range []string{"one\ntw", "o\n", "three\nfour", " cut"} {
		w.Write([]byte(b))
	}
	o.Exited(42)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	stamp := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `)
	for _, m := range stamp.FindAllString(string(b), -1) {
		if _, err := time.Parse(FileTimeLayout, m[:len(m)-1]); err != nil {
			t.Errorf("stamp %q: %v", m, err)
		}
	}
	got := stamp.ReplaceAllString(string(b), "T ")
	if diff := cmp.Diff("T one\nT two\nT three\nT four cut\n", got); diff != "" {
		t.Errorf("log file (-want +got, stamps as T):\n%s", diff)
	}
}

// A log file left with an unterminated line (its gatehouse was killed
// mid-line) gets its next stamped line on a line of its own, not glued
// to the cut one.
func TestOutputStartsItsFirstLineAfterACutOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web-1.log")
	if err := os.WriteFile(path, []byte("2030-01-02T03:04:05.000Z whole\n2030-01-02T03:04:06.000Z cut"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := NewOutput("web", "web-1", path, FileOptions{}, nil, nil)
	w := o.Process()
	w.SetPID(42)
	w.Write([]byte("next\n"))
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `).ReplaceAllString(string(b), "T ")
	if diff := cmp.Diff("T whole\nT cut\nT next\n", got); diff != "" {
		t.Errorf("log file (-want +got, stamps as T):\n%s", diff)
	}
}

// PruneLogs removes every file of an instance that is not live and was
// last written to longer than maxAge ago, and an app's directory left
// empty; it keeps live instances' files, recent ones, and files that are
// not instance logs.
func TestPruneLogsRemovesGoneInstances(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	old, recent := now.Add(-48*time.Hour), now.Add(-time.Hour)
	files := map[string]time.Time{
		"web/web-1.log": old,
		"web/web-3.log": old,
		"web/web-3-2029-12-01T00-00-00.000-size.log": old,
		"web/web-4.log": recent,
		"web/web-4-2029-12-01T00-00-00.000-size.log": old,
		"web/notes.txt":   old,
		"gone/gone-1.log": old,
	}
	for name, mtime := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
	}
	live := func(app, id string) bool { return id == "web-1" }
	if _, err := PruneLogs(dir, live, 24*time.Hour, now); err != nil {
		t.Fatal(err)
	}
	var left []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != dir {
			rel, _ := filepath.Rel(dir, p)
			left = append(left, filepath.ToSlash(rel))
		}
		return nil
	})
	want := []string{"web", "web/notes.txt", "web/web-1.log", "web/web-4-2029-12-01T00-00-00.000-size.log", "web/web-4.log"}
	if diff := cmp.Diff(want, left); diff != "" {
		t.Errorf("files left (-want +got):\n%s", diff)
	}
	if removed, _ := PruneLogs(dir, live, 0, now); len(removed) != 0 {
		t.Errorf("max_age 0 removed %q; want nothing", removed)
	}
}
