package telemetry

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestAsyncWriterWritesLines(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		want  []string
	}{
		{name: "with newlines", lines: []string{"a\n", "b\n"}, want: []string{"a", "b"}},
		{name: "newline added", lines: []string{"a", "b"}, want: []string{"a", "b"}},
		{name: "empty skipped", lines: []string{"a", "", "b"}, want: []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access.log")
			w := NewAsyncWriter(path, WriterOptions{})
			buf := make([]byte, 0, 16)
			for _, l := range tt.lines {
				buf = append(buf[:0], l...)
				w.Write(buf)
				// Write must copy: scribbling on the caller's buffer
				// afterwards must not change what is written.
				for i := range buf {
					buf[i] = 'X'
				}
			}
			if err := w.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if diff := cmp.Diff(tt.want, readLines(t, path)); diff != "" {
				t.Errorf("file lines (-want +got):\n%s", diff)
			}
			want := WriterStats{Written: uint64(len(tt.want))}
			if diff := cmp.Diff(want, w.Stats()); diff != "" {
				t.Errorf("Stats (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAsyncWriterLineOnDiskWithoutClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.log")
	w := NewAsyncWriter(path, WriterOptions{})
	defer w.Close()
	w.Write([]byte("hello"))
	testutil.WaitFor(t, time.Second, "line on disk", func() bool {
		b, _ := os.ReadFile(path)
		return string(b) == "hello\n"
	})
}

func TestAsyncWriterConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	const writers, perWriter = 8, 1000
	w := NewAsyncWriter(path, WriterOptions{BufferLines: writers * perWriter})
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range perWriter {
				w.Write(fmt.Appendf(nil, "g%d-%d", g, i))
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := len(readLines(t, path))
	st := w.Stats()
	if got != writers*perWriter || st.Written != uint64(got) || st.Dropped != 0 {
		t.Errorf("file has %d lines, stats %+v; want %d written, none dropped", got, st, writers*perWriter)
	}
}

// TestAsyncWriterUnopenable is the hard requirement: a log that cannot be
// opened costs callers nothing, is counted, and recovers by itself.
func TestAsyncWriterUnopenable(t *testing.T) {
	tests := []struct {
		name string
		// break makes path unopenable; fix makes it writable again.
		breakPath func(t *testing.T, path string)
		fix       func(t *testing.T, path string)
	}{
		{
			name: "path is a directory",
			breakPath: func(t *testing.T, path string) {
				if err := os.MkdirAll(path, 0o755); err != nil {
					t.Fatal(err)
				}
			},
			fix: func(t *testing.T, path string) {
				if err := os.Remove(path); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			// Root ignores permission bits, so a read-only parent is not a
			// reliable failure in CI containers; a parent that is a regular
			// file fails for everyone.
			name: "parent is a file",
			breakPath: func(t *testing.T, path string) {
				if err := os.WriteFile(filepath.Dir(path), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			fix: func(t *testing.T, path string) {
				if err := os.Remove(filepath.Dir(path)); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "data", "access.log")
			tt.breakPath(t, path)

			w := NewAsyncWriter(path, WriterOptions{})
			defer w.Close()
			line := []byte(`{"status":200}`)
			start := time.Now()
			for range 100_000 {
				w.Write(line)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("100k writes to an unopenable log took %v, want < 1s", d)
			}
			testutil.WaitFor(t, 2*time.Second, "open error counted", func() bool { return w.Stats().Errors > 0 })
			st := w.Stats()
			if st.Dropped == 0 || st.Written != 0 || st.LastError == "" {
				t.Errorf("Stats = %+v, want dropped lines, nothing written, a last error", st)
			}
			t.Logf("while broken: %+v", st)

			tt.fix(t, path)
			// Keep writing: the queue may still be full of lines from the
			// outage until the next open retry (about a second).
			const marker = "after-fix"
			testutil.WaitFor(t, 5*time.Second, "a line written after the fix", func() bool {
				w.Write([]byte(marker))
				b, _ := os.ReadFile(path)
				return bytes.Contains(b, []byte(marker))
			})
			if st := w.Stats(); st.Written == 0 {
				t.Errorf("Stats after fix = %+v, want lines written", st)
			}
		})
	}
}

// TestAsyncWriterWriteFails uses /dev/full, which opens fine and fails every
// write with ENOSPC: a full disk.
func TestAsyncWriterWriteFails(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skipf("no /dev/full: %v", err)
	}
	w := NewAsyncWriter("/dev/full", WriterOptions{BufferLines: 1024})
	line := []byte(`{"status":200,"path":"/x"}`)
	start := time.Now()
	for range 100_000 {
		w.Write(line)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("100k writes to a full disk took %v, want < 1s", d)
	}
	testutil.WaitFor(t, 2*time.Second, "write error counted", func() bool { return w.Stats().Errors > 0 })
	// Still never blocks after errors have been seen.
	start = time.Now()
	for range 10_000 {
		w.Write(line)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("writes after failures took %v, want < 1s", d)
	}
	start = time.Now()
	_ = w.Close() // reports the lost lines; informational only
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("Close took %v, want bounded", d)
	}
	st := w.Stats()
	if st.Written != 0 || st.Dropped == 0 || !strings.Contains(st.LastError, "no space left") {
		t.Errorf("Stats = %+v, want nothing written, lines dropped, ENOSPC as last error", st)
	}
	if st.Written+st.Dropped != 110_000 {
		t.Errorf("written+dropped = %d, want every line accounted for (110000)", st.Written+st.Dropped)
	}
}

func TestAsyncWriterAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	w := NewAsyncWriter(path, WriterOptions{})
	w.Write([]byte("before"))
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	w.Write([]byte("after")) // must not panic or block
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if diff := cmp.Diff([]string{"before"}, readLines(t, path)); diff != "" {
		t.Errorf("file lines (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(WriterStats{Written: 1, Dropped: 1}, w.Stats()); diff != "" {
		t.Errorf("Stats (-want +got):\n%s", diff)
	}
}

func TestAsyncWriterRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	const lines = 30_000 // 30000 * 100 bytes: about 2.9 MiB, over 1 MiB twice
	w := NewAsyncWriter(path, WriterOptions{MaxSizeMB: 1, MaxBackups: 1, BufferLines: lines})
	line := bytes.Repeat([]byte("x"), 99)
	for range lines {
		w.Write(line)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if st := w.Stats(); st.Written != lines {
		t.Fatalf("Stats = %+v, want %d written", st, lines)
	}
	// Two rotations happened; MaxBackups 1 keeps one. timberjack prunes in
	// its mill goroutine, which Close waits for.
	backups, err := filepath.Glob(filepath.Join(dir, "access-*.log"))
	if err != nil || len(backups) != 1 {
		t.Errorf("backups = %v (%v), want exactly one", backups, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 1<<20 {
		t.Errorf("current file is %d bytes, want <= 1 MiB after rotation", fi.Size())
	}
}
