package diagnose_test

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/DeRuina/timberjack"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// rotatedLog writes the lines of parts to the log at path through the
// rotation gatehouse's logs use, rotating it after each part but the
// last, and compresses the rotated files with compress ("", ".gz" or
// ".zst") as the rotation's compression would.
func rotatedLog(t *testing.T, path, compress string, parts ...[][]byte) {
	t.Helper()
	l := &timberjack.Logger{Filename: path}
	for i, lines := range parts {
		for _, line := range lines {
			if _, err := l.Write(append(line, '\n')); err != nil {
				t.Fatal(err)
			}
		}
		if i < len(parts)-1 {
			if err := l.Rotate(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if compress == "" {
		return
	}
	base := strings.TrimSuffix(filepath.Base(path), ".log")
	backups, err := filepath.Glob(filepath.Join(filepath.Dir(path), base+"-*.log"))
	if err != nil || len(backups) != len(parts)-1 {
		t.Fatalf("rotated files of %s: %q, %v; want %d", path, backups, err, len(parts)-1)
	}
	for _, b := range backups {
		compressFile(t, b, compress)
	}
}

func compressFile(t *testing.T, path, suffix string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path + suffix)
	if err != nil {
		t.Fatal(err)
	}
	var w io.WriteCloser
	if suffix == ".gz" {
		w = gzip.NewWriter(f)
	} else if w, err = zstd.NewWriter(f); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(src); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func jsonLine(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A crash whose events and requests were logged before the logs were
// rotated, within diagnose's window, is found as if nothing had been
// rotated: the rotated files, compressed or not, are read, oldest first,
// before the files being written.
func TestRotatedLogsAreRead(t *testing.T) {
	for _, compress := range []string{"", ".gz", ".zst"} {
		t.Run("backups"+compress, func(t *testing.T) {
			t.Parallel()
			ev, _, ids := crashEvidence(true)
			// Each log rotated twice: the first exit and its request in
			// the oldest rotated file, the second in the next, the third
			// in the file being written.
			events, access := make([][][]byte, 3), make([][][]byte, 3)
			var exits []time.Time
			for _, e := range ev.Events {
				if e.Type == telemetry.EventExit {
					exits = append(exits, e.Time)
				}
			}
			for _, e := range ev.Events {
				k := 0
				for k < 2 && exits[k].Before(e.Time) {
					k++
				}
				events[k] = append(events[k], jsonLine(t, e))
			}
			for k, a := range ev.Access {
				access[k] = append(access[k], jsonLine(t, a))
			}
			dir := t.TempDir()
			rotatedLog(t, filepath.Join(dir, "events.log"), compress, events...)
			rotatedLog(t, filepath.Join(dir, "access.log"), compress, access...)
			if err := ev.State.Write(dir); err != nil {
				t.Fatal(err)
			}

			loaded, err := diagnose.Load(dir, ev.Since)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(loaded.Events) != len(ev.Events) || len(loaded.Access) != len(ev.Access) {
				t.Errorf("read %d events and %d requests; want %d and %d", len(loaded.Events), len(loaded.Access), len(ev.Events), len(ev.Access))
			}
			for i := 1; i < len(loaded.Events); i++ {
				if loaded.Events[i].Time.Before(loaded.Events[i-1].Time) {
					t.Errorf("events out of order: %s %s at %v after %s at %v", loaded.Events[i].Type, loaded.Events[i].Instance,
						loaded.Events[i].Time, loaded.Events[i-1].Type, loaded.Events[i-1].Time)
				}
			}
			rep := diagnose.Run(loaded)
			f := findingOf(rep, "crash", "web")
			if f == nil || f.RequestsAffected != 3 || !strings.Contains(f.Title, "3 times") || !strings.Contains(f.Title, ids[2]) {
				t.Errorf("want web-1's crash, 3 times, 3 requests affected, the last %s:\n%s", ids[2], render(rep))
			}
			for _, u := range loaded.Unreadable {
				t.Errorf("unreadable: %s: %v", u.File, u.Err)
			}
		})
	}
}
