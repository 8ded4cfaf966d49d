package diagnose_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// Every gatehouse a test starts is stopped by the harness, every client
// closes its idle connections and every process is reaped, so nothing may
// be left running. The parallel tests wait on misbehaving apps, probes
// and timers more than they compute: six run at once.
func TestMain(m *testing.M) {
	testutil.WaitingParallel(6)
	goleak.VerifyTestMain(m, goleak.Cleanup(testutil.ExitRemovingBinaries))
}

// start runs the fault app with n instances and args, sampling process
// statistics every 200ms, after adjust (may be nil) changed the config.
// It returns the gatehouse and the time diagnose should look from.
func start(t *testing.T, n int, adjust func(*config.Config, *config.App), args ...string) (*harness.Gatehouse, time.Time) {
	t.Helper()
	cfg, app := harness.FaultApp(t, n, args...)
	cfg.SampleInterval = config.Duration(200 * time.Millisecond)
	app.StopTimeout = config.Duration(2 * time.Second)
	if adjust != nil {
		adjust(cfg, app)
	}
	since := time.Now().Add(-time.Second)
	return harness.Start(t, cfg), since
}

// serving is start, then a wait until the n instances are ready; it
// returns a gateway client too.
func serving(t *testing.T, n int, adjust func(*config.Config, *config.App), args ...string) (*harness.Gatehouse, time.Time, *http.Client) {
	t.Helper()
	g, since := start(t, n, adjust, args...)
	g.WaitReady(t, "web", n, 15*time.Second)
	return g, since, client(t, 20*time.Second)
}

// client returns a gateway client whose idle connections are closed when
// the test ends.
func client(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	c := harness.Client(timeout)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// result is one request's outcome.
type result struct {
	status int
	cause  string
	err    error
}

func (r result) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.status, r.cause)
}

// do sends one request and reads the whole answer.
func do(c *http.Client, method, u string) result {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		return result{err: err}
	}
	resp, err := c.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return result{status: resp.StatusCode, cause: resp.Header.Get("Gatehouse-Cause"), err: err}
}

// mustGet fetches u and fails the test unless it answers want.
func mustGet(t *testing.T, c *http.Client, u string, want int) {
	t.Helper()
	if r := do(c, http.MethodGet, u); r.err != nil || r.status != want {
		t.Fatalf("GET %s: %v; want %d", u, r, want)
	}
}

// parallel sends n requests at once and returns their results.
func parallel(c *http.Client, n int, method, u string) []result {
	out := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); out[i] = do(c, method, u) }()
	}
	wg.Wait()
	return out
}

// waitEvents waits until there are at least n events of type typ and
// returns them.
func waitEvents(t *testing.T, g *harness.Gatehouse, timeout time.Duration, typ string, n int) []telemetry.Event {
	t.Helper()
	var evs []telemetry.Event
	testutil.WaitFor(t, timeout, fmt.Sprintf("%d %q events", n, typ), func() bool {
		evs = g.Events(typ)
		return len(evs) >= n
	})
	return evs
}

// apiDiagnose is GET /api/diagnose?since=, decoded both as the report and
// as plain JSON, to check the contract's field names.
func apiDiagnose(t *testing.T, g *harness.Gatehouse, since time.Time) (diagnose.Report, map[string]any) {
	t.Helper()
	c := &http.Client{Timeout: 20 * time.Second}
	defer c.CloseIdleConnections()
	u := g.AdminURL + "/api/diagnose?since=" + url.QueryEscape(since.UTC().Format(time.RFC3339Nano))
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v\n%s", u, resp.StatusCode, err, body)
	}
	var rep diagnose.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		t.Fatalf("decode /api/diagnose: %v\n%s", err, body)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("decode /api/diagnose: %v", err)
	}
	return rep, raw
}

// render formats a report for failure messages.
func render(r diagnose.Report) string {
	var b bytes.Buffer
	diagnose.Render(&b, r)
	return b.String()
}

// expectFirst diagnoses live twice, through the server and through the
// admin API, and checks that both name id first, with evidence (title and
// evidence lines) holding every phrase. It returns the server's finding.
func expectFirst(t *testing.T, g *harness.Gatehouse, since time.Time, id string, phrases ...string) diagnose.Finding {
	t.Helper()
	rep, err := g.Srv.Diagnose(since)
	if err != nil {
		t.Fatalf("Diagnose: %v", err)
	}
	checkFirst(t, "Server.Diagnose", rep, id, phrases)
	api, raw := apiDiagnose(t, g, since)
	checkFirst(t, "GET /api/diagnose", api, id, phrases)
	checkContract(t, raw)
	if len(rep.Findings) == 0 {
		t.FailNow()
	}
	return rep.Findings[0]
}

func checkFirst(t *testing.T, via string, rep diagnose.Report, id string, phrases []string) {
	t.Helper()
	if len(rep.Findings) == 0 || rep.Findings[0].ID != id {
		t.Errorf("%s: want %q as the first finding; got:\n%s", via, id, render(rep))
		return
	}
	f := rep.Findings[0]
	text := f.Title + "\n" + strings.Join(f.Evidence, "\n")
	for _, p := range phrases {
		if !strings.Contains(text, p) {
			t.Errorf("%s: finding %s lacks %q in its title and evidence:\n%s", via, id, p, render(rep))
		}
	}
	if f.Fix == "" || f.Title == "" || len(f.Evidence) == 0 {
		t.Errorf("%s: finding %s has no title, evidence or fix: %+v", via, id, f)
	}
}

// checkContract checks the public JSON names of /api/diagnose.
func checkContract(t *testing.T, raw map[string]any) {
	t.Helper()
	if _, ok := raw["since"].(string); !ok {
		t.Errorf("/api/diagnose: no \"since\" string in %v", raw)
	}
	fs, ok := raw["findings"].([]any)
	if !ok || len(fs) == 0 {
		t.Errorf("/api/diagnose: no \"findings\" list in %v", raw)
		return
	}
	f, _ := fs[0].(map[string]any)
	for _, k := range []string{"id", "severity", "app", "title", "evidence", "fix", "requests_affected"} {
		if _, ok := f[k]; !ok {
			t.Errorf("/api/diagnose: first finding has no %q: %v", k, f)
		}
	}
}

// pidOf returns the pid of instance id.
func pidOf(t *testing.T, g *harness.Gatehouse, id string) int {
	t.Helper()
	for _, in := range g.Instances("web") {
		if in.ID == id && in.PID > 0 {
			return in.PID
		}
	}
	t.Fatalf("no running instance %s: %+v", id, g.Instances("web"))
	return 0
}

// findingOf is the first finding id of app in rep, nil when there is none.
func findingOf(rep diagnose.Report, id, app string) *diagnose.Finding {
	for i := range rep.Findings {
		if rep.Findings[i].ID == id && rep.Findings[i].App == app {
			return &rep.Findings[i]
		}
	}
	return nil
}

// count is how many findings id rep has.
func count(rep diagnose.Report, id string) int {
	n := 0
	for _, f := range rep.Findings {
		if f.ID == id {
			n++
		}
	}
	return n
}
