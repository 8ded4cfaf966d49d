package diagnose_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// An access log line longer than the reader's line bound is skipped like
// any other line that is not an entry: one request with a long path (a
// request_head of several MB, each byte of invalid UTF-8 written as six)
// or a run of garbage left by a crash must not make diagnose fail, nor
// hide the requests logged after it.
func TestLoadSkipsLongAccessLine(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	line := func(path string) []byte {
		return telemetry.AppendAccessJSON(nil, &telemetry.AccessEntry{
			Time: at, App: "web", Instance: "web-1", Method: "GET", Host: "h", Path: path, Status: 502, Attempts: 1, Cause: "connection_refused",
		})
	}
	tests := []struct {
		name string
		long []byte
	}{
		{"long path", line("/" + strings.Repeat("\xff", 300<<10))}, // 1.8 MB once escaped
		{"garbage", []byte(strings.Repeat("\x00", 2<<20) + "\n")},
		{"unterminated garbage", []byte(strings.Repeat("x", 2<<20))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b []byte
			b = append(b, line("/before")...)
			b = append(b, tt.long...)
			if tt.long[len(tt.long)-1] == '\n' {
				b = append(b, line("/after")...)
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "access.log"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			ev, err := diagnose.Load(dir, time.Time{})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			var paths []string
			for _, a := range ev.Access {
				paths = append(paths, a.Path)
			}
			want := []string{"/before", "/after"}
			if tt.long[len(tt.long)-1] != '\n' {
				want = want[:1]
			}
			if strings.Join(paths, " ") != strings.Join(want, " ") {
				t.Errorf("paths read = %q, want %q", paths, want)
			}
		})
	}
}
