package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/cli"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// gatehouse upgrade hands the instances to a successor, which reads
// their output from then on: logs -f follows the successor's stream,
// with what it read before the stream reached it, rather than ending as
// it does when gatehouse stops.
func TestLogsFollowGoesOnAcrossAHandover(t *testing.T) {
	t.Chdir(t.TempDir()) // no gatehouse.yaml: --admin names the target
	t.Setenv("GATEHOUSE_ADMIN_TOKEN", "")
	at := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	line := func(s string, sec int) telemetry.LogLine {
		return telemetry.LogLine{Time: at.Add(time.Duration(sec) * time.Second), App: "web", Instance: "web-1", Line: s}
	}
	sse := func(w http.ResponseWriter, l telemetry.LogLine, end string) {
		w.Header().Set("Content-Type", "text/event-stream")
		b, _ := json.Marshal(l)
		fmt.Fprintf(w, "event: log\ndata: %s\n\nevent: end\ndata: %s\n\n", b, end)
	}
	// The predecessor streams one line and hands over; the successor
	// kept one line that came meanwhile, streams one more, and stops.
	var streams, backlogs atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/logstream", func(w http.ResponseWriter, r *http.Request) {
		if streams.Add(1) == 1 {
			sse(w, line("before the upgrade", 1), `{"reason":"`+admin.EndHandover+`"}`)
			return
		}
		sse(w, line("after the upgrade", 3), `{}`)
	})
	mux.HandleFunc("GET /api/logs", func(w http.ResponseWriter, r *http.Request) {
		lines := []admin.LogEntry{}
		if backlogs.Add(1) > 1 {
			if since := r.URL.Query().Get("since"); since != at.Add(time.Second).Format(time.RFC3339Nano) {
				t.Errorf("the successor's backlog asked since=%q, want the time of the last line printed", since)
			}
			l := line("during the upgrade", 2)
			lines = append(lines, admin.LogEntry{Time: l.Time, App: l.App, Instance: l.Instance, Stream: admin.StreamOutput, Line: l.Line})
		}
		json.NewEncoder(w).Encode(map[string]any{"lines": lines})
	})
	mux.HandleFunc("GET /api/events", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"events": []telemetry.Event{}})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer http.DefaultClient.CloseIdleConnections()

	var stdout, stderr bytes.Buffer
	code := cli.Main([]string{"logs", "-f", "--json", "--admin", srv.URL}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("logs -f exited %d; stderr %s", code, stderr.String())
	}
	var got []string
	for l := range strings.Lines(stdout.String()) {
		var rec struct{ Line string }
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, rec.Line)
	}
	want := []string{"before the upgrade", "during the upgrade", "after the upgrade"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logs -f printed (-want +got):\n%s", diff)
	}
}
