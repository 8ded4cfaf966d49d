package server_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// client returns a gateway client whose idle connections are closed when
// the test ends.
func client(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	c := harness.Client(timeout)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// get fetches url and returns the status, body and headers.
func get(t *testing.T, c *http.Client, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// instance returns the status of instance id, and whether it exists.
func instance(g *harness.Gatehouse, id string) (supervisor.InstanceStatus, bool) {
	for _, in := range g.Instances("web") {
		if in.ID == id {
			return in, true
		}
	}
	return supervisor.InstanceStatus{}, false
}

// waitEvent waits for an event of type typ for instance id (any when "")
// that match accepts (nil: any), and returns the first.
func waitEvent(t *testing.T, g *harness.Gatehouse, timeout time.Duration, typ, id string, match func(telemetry.Event) bool) telemetry.Event {
	t.Helper()
	return g.WaitEvent(t, timeout, typ, id, match)
}

// describeEvents formats events for failure messages.
func describeEvents(evs []telemetry.Event) string { return harness.DescribeEvents(evs) }

// percentile returns the p-th percentile (0..1) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}

// serving runs the fault app with n instances and args behind a
// gatehouse, after adjust (may be nil) changed the config, and waits
// until every instance is ready.
func serving(t *testing.T, n int, adjust func(*config.Config, *config.App), args ...string) *harness.Gatehouse {
	t.Helper()
	cfg, app := harness.FaultApp(t, n, args...)
	if adjust != nil {
		adjust(cfg, app)
	}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", n, 20*time.Second)
	return g
}

// dial connects to addr for raw bytes, with a 10s deadline on the whole
// conversation; the connection is closed when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// load is requests that several workers send back to back until end: it
// counts them and their failures, and keeps the last failure.
type load struct {
	sent, failed atomic.Int64
	end          func() // stops the workers and waits for them; idempotent

	mu      sync.Mutex
	lastErr error
}

// startLoad runs workers goroutines, each with the client newClient(w)
// returns, sending its i-th request with send(c, w, i), until end or the
// test's end.
func startLoad(t *testing.T, workers int, newClient func(w int) *http.Client, send func(c *http.Client, w, i int) error) *load {
	l := &load{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	l.end = sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(l.end) // a failed wait still stops the load
	for w := range workers {
		wg.Go(func() {
			c := newClient(w)
			defer c.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				l.sent.Add(1)
				if err := send(c, w, i); err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					l.lastErr = err
					l.mu.Unlock()
				}
			}
		})
	}
	return l
}

// waitMore waits until n more requests than now have been sent.
func (l *load) waitMore(t *testing.T, n int64, what string) {
	t.Helper()
	from := l.sent.Load()
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("%d requests %s", n, what), func() bool { return l.sent.Load() >= from+n })
}

// last is the last failure, nil when none.
func (l *load) last() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}
