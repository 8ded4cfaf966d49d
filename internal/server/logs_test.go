package server_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// Logs that cannot be written neither fail nor slow requests, and the
// admin status reports the failing writers. Not parallel: it compares
// latencies.
func TestUnwritableLogsDoNotHurtRequests(t *testing.T) {
	const requests = 300
	// baseline is the p50 latency with a good data dir.
	baseline := fireRequests(t, t.TempDir(), requests, false)
	t.Logf("good data dir: p50 %v", baseline)

	tests := []struct {
		name string
		// dataDir prepares and returns the data_dir.
		dataDir func(t *testing.T) string
	}{
		{"data_dir under a regular file", func(t *testing.T) string {
			f := filepath.Join(t.TempDir(), "not-a-dir")
			if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(f, "data")
		}},
		{"log files are directories", func(t *testing.T) string {
			d := t.TempDir()
			for _, name := range []string{"access.log", "events.log"} {
				if err := os.Mkdir(filepath.Join(d, name), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			return d
		}},
		{"log files are /dev/full", func(t *testing.T) string {
			if _, err := os.Stat("/dev/full"); err != nil {
				t.Skip("no /dev/full")
			}
			d := t.TempDir()
			for _, name := range []string{"access.log", "events.log"} {
				if err := os.Symlink("/dev/full", filepath.Join(d, name)); err != nil {
					t.Fatal(err)
				}
			}
			return d
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p50 := fireRequests(t, tc.dataDir(t), requests, true)
			t.Logf("p50 %v (good data dir: %v)", p50, baseline)
			if limit := 3*baseline + 20*time.Millisecond; p50 > limit {
				t.Errorf("p50 latency %v with unwritable logs, %v with a good data dir (limit %v)", p50, baseline, limit)
			}
		})
	}
}

// fireRequests runs a gatehouse with dataDir, sends n requests from 8
// clients, checks they all succeed and what /api/status says of the log
// writers, and returns the p50 latency.
func fireRequests(t *testing.T, dataDir string, n int, wantFailing bool) time.Duration {
	t.Helper()
	cfg, _ := harness.FaultApp(t, 2)
	cfg.DataDir = dataDir
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 2, 10*time.Second)

	c := client(t, 5*time.Second)
	var mu sync.Mutex
	var lat []time.Duration
	fails := map[string]int{}
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				start := time.Now()
				resp, err := c.Get(g.URL + "/")
				d := time.Since(start)
				mu.Lock()
				switch {
				case err != nil:
					fails[err.Error()]++
				default:
					resp.Body.Close()
					if resp.StatusCode != 200 {
						fails[resp.Status+" "+resp.Header.Get("Gatehouse-Cause")]++
					}
				}
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("failed requests with data_dir %s: %v", dataDir, fails)
	}
	if got := len(g.Access()); got < n {
		t.Errorf("%d access entries observed, want %d", got, n)
	}

	var st admin.StatusResponse
	check := func() bool {
		code, body, _ := get(t, c, g.AdminURL+"/api/status")
		if code != 200 {
			t.Fatalf("GET /api/status = %d: %s", code, body)
		}
		st = admin.StatusResponse{}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("GET /api/status: %v\n%s", err, body)
		}
		a := st.Logs["access.log"]
		return a.Errors > 0 || a.Dropped > 0
	}
	if wantFailing {
		testutil.WaitFor(t, 5*time.Second, "/api/status to report access.log failing under \"logs\"", check)
		if a := st.Logs["access.log"]; a.LastError == "" || a.Written > 0 {
			t.Errorf("logs.access.log = %+v; want a last error and nothing written", a)
		}
	} else {
		// Once the writer has every line, nothing may be reported failing.
		testutil.WaitFor(t, 5*time.Second, "access.log to have every request written", func() bool {
			return check() || st.Logs["access.log"].Written >= uint64(n)
		})
		if check() {
			t.Errorf("good data dir, but /api/status reports access.log failing: %+v", st.Logs["access.log"])
		}
		if _, err := os.Stat(filepath.Join(dataDir, "access.log")); err != nil {
			t.Errorf("good data dir has no access.log: %v", err)
		}
	}
	return percentile(lat, 0.5)
}
