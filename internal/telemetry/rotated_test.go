package telemetry

import (
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The files a log was rotated into are read oldest first, the log being
// written last; those rotated before since are not read (they hold
// nothing written since), nor is a half-compressed copy of one, nor the
// files of another log.
func TestReadRotatedReadsTheRotatedFilesOldestFirst(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, line string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeGz := func(name, line string) {
		t.Helper()
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		zw := gzip.NewWriter(f)
		if _, err := zw.Write([]byte(line + "\n")); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	write("access.log", "now")
	write("access-2026-01-01T09-00-00.000-size.log", "before since")
	writeGz("access-2026-01-01T10-00-00.000-size.log.gz", "first")
	write("access-2026-01-01T10-00-00.000-size_1.log", "second")
	write("access-2026-01-01T11-00-00.000-time.log", "third, being compressed")
	if err := os.WriteFile(filepath.Join(dir, "access-2026-01-01T11-00-00.000-time.log.gz"), []byte("half a gzip stream"), 0o644); err != nil {
		t.Fatal(err)
	}
	write("access-2026-01-01T12-00-00.000.log", "fourth, named without a reason")
	write("events-2026-01-01T10-30-00.000-size.log", "another log's")
	write("access-2026-01-01T10-30-00.000-size.log.gz.tmp", "a compression under way")
	write("access-old.log", "not a rotated file")

	var got []string
	since := time.Date(2026, 1, 1, 9, 30, 0, 0, time.UTC)
	if err := ReadRotated(filepath.Join(dir, "access.log"), since, func(l []byte) { got = append(got, string(l)) }); err != nil {
		t.Fatalf("ReadRotated: %v", err)
	}
	want := []string{"first", "second", "third, being compressed", "fourth, named without a reason", "now"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("lines read (-want +got):\n%s", d)
	}
}

// A rotated file that cannot be read is reported once the others are
// read; a log never written, with nothing rotated, is no error.
func TestReadRotatedReportsAnUnreadableFileAfterTheRest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "events-2026-01-01T10-00-00.000-size.log.gz"), []byte("not gzip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "events.log"), []byte("now\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := ReadRotated(filepath.Join(dir, "events.log"), time.Time{}, func(l []byte) { got = append(got, string(l)) })
	if err == nil || len(got) != 1 || got[0] != "now" {
		t.Errorf("ReadRotated with a corrupt rotated file: lines %q, error %v; want the current file's line and an error", got, err)
	}
	if err := ReadRotated(filepath.Join(t.TempDir(), "events.log"), time.Time{}, func([]byte) {}); err != nil {
		t.Errorf("ReadRotated of a log never written: %v; want no error", err)
	}
}

// A rotation while the rotated files are read (a busy log, many large
// files to read) neither loses what the log being written held nor reads
// it twice: the log is opened before the rotated files are listed.
func TestReadRotatedThroughARotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	if err := os.WriteFile(filepath.Join(dir, "access-2026-01-01T10-00-00.000-size.log"), []byte("first\nsecond\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("third\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rotated := false
	var got []string
	err := ReadRotated(path, time.Time{}, func(l []byte) {
		got = append(got, string(l))
		if rotated {
			return
		}
		// The writer rotates the log as the first line is read.
		rotated = true
		if err := os.Rename(path, filepath.Join(dir, "access-2026-01-01T11-00-00.000-size.log")); err != nil {
			t.Error(err)
		}
		if err := os.WriteFile(path, []byte("fourth, after the read began\n"), 0o644); err != nil {
			t.Error(err)
		}
	})
	if err != nil {
		t.Fatalf("ReadRotated: %v", err)
	}
	if d := cmp.Diff([]string{"first", "second", "third"}, got); d != "" {
		t.Errorf("lines read through a rotation (-want +got):\n%s", d)
	}
}

// What is read of a log and its rotated files is the newest budget
// bytes: the log being written, then the rotated files newest first, the
// last of them from where the budget ends (its line cut there left out),
// a compressed one only whole, as compressedRatio times its size; and
// of a log being written larger than the budget, its newest lines. It
// says when it left some out.
func TestReadRotatedReadsTheNewestWithinItsBudget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("access.log", "c1\nc2\n")                                  // 6 bytes
	write("access-2026-01-01T12-00-00.000-size.log", "r3a\nr3b\n")   // 8
	write("access-2026-01-01T11-00-00.000-size.log", "r2aaa\nr2b\n") // 10
	write("access-2026-01-01T10-00-00.000-size.log", "r1a\nr1b\n")   // 8
	path := filepath.Join(dir, "access.log")
	tests := []struct {
		budget int64
		want   []string
		cut    bool
	}{
		{100, []string{"r1a", "r1b", "r2aaa", "r2b", "r3a", "r3b", "c1", "c2"}, false},
		{32, []string{"r1a", "r1b", "r2aaa", "r2b", "r3a", "r3b", "c1", "c2"}, false}, // all, to the byte
		{24, []string{"r2aaa", "r2b", "r3a", "r3b", "c1", "c2"}, true},                // r2 whole, r1 none
		{18, []string{"r2b", "r3a", "r3b", "c1", "c2"}, true},                         // r2 from "r2b" on, just at its start
		{16, []string{"r3a", "r3b", "c1", "c2"}, true},                                // r2's last 2 bytes, a cut line
		{14, []string{"r3a", "r3b", "c1", "c2"}, true},
		{13, []string{"r3b", "c1", "c2"}, true}, // r3 cut inside "r3a"
		{6, []string{"c1", "c2"}, true},
		{3, []string{"c2"}, true}, // the log being written, its newest line
		{2, nil, true},            // a cut line only
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.budget), func(t *testing.T) {
			var got []string
			cut, err := readRotated(path, time.Time{}, tt.budget, func(l []byte) { got = append(got, string(l)) })
			if err != nil {
				t.Fatal(err)
			}
			if cut != tt.cut {
				t.Errorf("budget %d: cut %v; want %v", tt.budget, cut, tt.cut)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("budget %d (-want +got):\n%s", tt.budget, diff)
			}
		})
	}
}
