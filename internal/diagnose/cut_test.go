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

// A log larger than diagnose reads of it (a busy gatehouse's access log)
// is read from its newest part only: the report says so, and from when
// its findings and counts are, rather than passing off a part of the
// window as the whole of it. A log read whole says nothing of the kind.
func TestReportSaysWhenALogWasReadOnlyInPart(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Second)
	since := now.Add(-time.Hour)
	recent := now.Add(-5 * time.Minute)
	entry := jsonLine(t, diagnose.Access{Time: recent, RequestID: "r1", App: "web", Instance: "web-1", Method: "GET", Path: "/", Status: 200})
	for _, tc := range []struct {
		name string
		// filler is how many bytes older than the entry the log holds
		// first (zeros, as a line that does not parse).
		filler int64
		cut    bool
	}{
		{"read whole", 1 << 10, false},
		{"larger than the budget", telemetry.ReadBudget, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			f, err := os.Create(filepath.Join(dir, "access.log"))
			if err != nil {
				t.Fatal(err)
			}
			// Sparse: nothing written, yet read byte by byte.
			if err := f.Truncate(tc.filler); err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(append(append([]byte("\n"), entry...), '\n'), tc.filler); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			ev, err := diagnose.Load(dir, since)
			if err != nil {
				t.Fatal(err)
			}
			rep := diagnose.Run(ev)
			if rep.Requests != 1 {
				t.Errorf("%d requests; want the 1 in the log:\n%s", rep.Requests, render(rep))
			}
			var said *diagnose.Finding
			for i, f := range rep.Findings {
				if f.ID == "evidence_cut" {
					said = &rep.Findings[i]
				}
			}
			if got := said != nil; got != tc.cut {
				t.Fatalf("evidence_cut reported: %v; want %v:\n%s", got, tc.cut, render(rep))
			}
			if !tc.cut {
				return
			}
			if want := "data_dir/access.log were read: the findings are those from " + clockOf(recent); !strings.Contains(said.Title, want) {
				t.Errorf("evidence_cut title %q; want it to say %q", said.Title, want)
			}
			if said.Severity != diagnose.Warning || said.Past || said.Fix == "" || rep.Findings[0].ID != "evidence_cut" {
				t.Errorf("evidence_cut: %s, past %v, fix %q, first %s; want a current warning first, with a fix:\n%s",
					said.Severity, said.Past, said.Fix, rep.Findings[0].ID, render(rep))
			}
		})
	}
}
