package diagnose_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/diagnose"
)

// diagnose reads the access log where access_log had gatehouse write it
// (the snapshot says where): a path relative to data_dir or absolute is
// read like data_dir/access.log, and an access log sent to stdout or
// turned off is named as such, not as data_dir/access.log gone missing.
func TestDiagnoseReadsTheAccessLogWhereAccessLogSaid(t *testing.T) {
	elsewhere := t.TempDir()
	for _, tc := range []struct {
		name    string
		setting func(dir string) string
		// at is where the access log is moved to, "" when it is left
		// out; the findings then come from it.
		at func(dir string) string
		// warn is the evidence_unreadable title expected, "" for none.
		warn string
	}{
		{"data_dir/access.log", func(string) string { return "" }, nil, ""},
		{"a path under data_dir", func(string) string { return "logs/requests.log" },
			func(dir string) string { return filepath.Join(dir, "logs", "requests.log") }, ""},
		{"an absolute path", func(string) string { return filepath.Join(elsewhere, "requests.log") },
			func(string) string { return filepath.Join(elsewhere, "requests.log") }, ""},
		{"stdout", func(string) string { return "stdout" }, func(string) string { return "" },
			"the access log is not written to a file"},
		{"off", func(string) string { return "off" }, func(string) string { return "" },
			"the access log is not written to a file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ev, _, _ := crashEvidence(true)
			ev.State.AccessLog = tc.setting(dir)
			writeDataDir(t, dir, ev)
			if tc.at != nil {
				moveTo := tc.at(dir)
				if moveTo == "" {
					if err := os.Remove(filepath.Join(dir, "access.log")); err != nil {
						t.Fatal(err)
					}
				} else {
					if err := os.MkdirAll(filepath.Dir(moveTo), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.Rename(filepath.Join(dir, "access.log"), moveTo); err != nil {
						t.Fatal(err)
					}
				}
			}
			loaded, err := diagnose.Load(dir, ev.Since)
			if err != nil {
				t.Fatal(err)
			}
			rep := diagnose.Run(loaded)
			var warned []string
			for _, f := range rep.Findings {
				if f.ID == "evidence_unreadable" {
					warned = append(warned, f.Title)
				}
			}
			if tc.warn == "" {
				if len(warned) > 0 || rep.Requests != len(ev.Access) {
					t.Errorf("requests %d, warnings %q; want the %d requests of the access log and no warning", rep.Requests, warned, len(ev.Access))
				}
				return
			}
			if len(warned) != 1 || !strings.HasPrefix(warned[0], tc.warn) || rep.Requests != 0 {
				t.Errorf("requests %d, warnings %q; want none and one warning %q", rep.Requests, warned, tc.warn)
			}
		})
	}
}
