package diagnose_test

import (
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/diagnose"
)

// shifted is ev moved d back in time: its events, requests and snapshot.
func shifted(ev *diagnose.Evidence, d time.Duration) *diagnose.Evidence {
	out := *ev
	out.Since, out.Until = ev.Since.Add(-d), ev.Until.Add(-d)
	out.Events = append(out.Events[:0:0], ev.Events...)
	for i := range out.Events {
		out.Events[i].Time = out.Events[i].Time.Add(-d)
	}
	out.Access = append(out.Access[:0:0], ev.Access...)
	for i := range out.Access {
		out.Access[i].Time = out.Access[i].Time.Add(-d)
	}
	out.State.At = ev.State.At.Add(-d)
	return &out
}

// Offline, the window diagnose looks at ends when the data dir's
// gatehouse last recorded its state: a gatehouse that stopped (or a copy
// of its data dir sent with a bug report) hours ago is diagnosed over the
// last hour it ran, not over hours nothing was written, which would say
// "No problems found". A data dir still written to ends its window now.
func TestOfflineWindowEndsWhenGatehouseLastRan(t *testing.T) {
	for _, tc := range []struct {
		name string
		ago  time.Duration
	}{
		{"running", 0},
		{"stopped three hours ago", 3 * time.Hour},
		{"stopped three days ago", 72 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ev, _, _ := crashEvidence(true)
			ev = shifted(ev, tc.ago)
			dir := t.TempDir()
			writeDataDir(t, dir, ev)
			loaded, err := diagnose.LoadWindow(dir, time.Hour)
			if err != nil {
				t.Fatalf("LoadWindow: %v", err)
			}
			rep := diagnose.Run(loaded)
			if f := findingOf(rep, "crash", "web"); f == nil || f.RequestsAffected != 3 {
				t.Errorf("want the crash, 3 requests affected:\n%s", render(rep))
			}
			if end := ev.State.At; tc.ago > 0 && !rep.Until.Equal(end.UTC()) {
				t.Errorf("window ends %v; want when the state was last written, %v", rep.Until, end.UTC())
			}
			if got := rep.Until.Sub(rep.Since); got != time.Hour {
				t.Errorf("window of %v; want 1h", got)
			}
		})
	}
}
