package alerts

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// results records what a notifier reports, for the metrics.
type results struct {
	mu  sync.Mutex
	got []string
}

func (r *results) add(_, result string) {
	r.mu.Lock()
	r.got = append(r.got, result)
	r.mu.Unlock()
}

func (r *results) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func (r *results) count(result string) int {
	n := 0
	for _, g := range r.list() {
		if g == result {
			n++
		}
	}
	return n
}

func testReceiver(url string) *config.Receiver {
	r := config.NewReceiver()
	r.Name, r.URL = "ops", url
	r.Timeout = config.Duration(5 * time.Second)
	return r
}

// startNotifier runs a notifier with a fast back-off until the test ends.
func startNotifier(t *testing.T, r *config.Receiver, res *results) *notifier {
	t.Helper()
	q := newNotifier(r, nil, res.add)
	q.log = discard
	q.retryBase, q.retryMax = 20*time.Millisecond, 80*time.Millisecond
	go q.run()
	t.Cleanup(func() { q.close(time.Second) })
	return q
}

func firing(app string) Notification {
	return Notification{Key: Key{NoReadyInstance, app, ""}, Status: Firing, Summary: app + " has no ready instance", StartsAt: t0}
}

// Retries: attempts that fail with a 5xx, 429 or 408 are retried with
// back-off until max_attempts; a 4xx refusal is not retried.
func TestNotifierRetries(t *testing.T) {
	tests := []struct {
		name        string
		answer      func(n int) int
		maxAttempts int
		want        []string
		requests    int
		delivered   int
	}{
		{"fails twice then succeeds", func(n int) int {
			if n <= 2 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		}, 5, []string{ResultRetried, ResultRetried, ResultSent}, 3, 1},
		{"429 is retried", func(n int) int {
			if n == 1 {
				return http.StatusTooManyRequests
			}
			return http.StatusOK
		}, 5, []string{ResultRetried, ResultSent}, 2, 1},
		{"gives up after max_attempts", func(int) int { return http.StatusBadGateway }, 3,
			[]string{ResultRetried, ResultRetried, ResultFailed}, 3, 0},
		{"a 4xx refusal is not retried", func(int) int { return http.StatusUnauthorized }, 5, []string{ResultFailed}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, tt.answer)
			r := testReceiver(rcv.URL)
			r.MaxAttempts = tt.maxAttempts
			res := &results{}
			q := startNotifier(t, r, res)
			start := time.Now()
			q.enqueue(firing("web"))
			testutil.WaitFor(t, 10*time.Second, "a final result", func() bool {
				n := len(res.list())
				return n > 0 && (res.list()[n-1] == ResultSent || res.list()[n-1] == ResultFailed)
			})
			if diff := cmp.Diff(tt.want, res.list()); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			if got := rcv.requests(); got != tt.requests {
				t.Errorf("receiver got %d requests, want %d", got, tt.requests)
			}
			if got := len(received[jsonBody](t, rcv)); got != tt.delivered {
				t.Errorf("delivered %d, want %d", got, tt.delivered)
			}
			// Back-off: 20ms, then 40ms, between attempts.
			if retries := tt.requests - 1; retries >= 2 && time.Since(start) < 60*time.Millisecond {
				t.Errorf("%d retries within %s: no back-off", retries, time.Since(start))
			}
		})
	}
}

// rate_per_minute spaces notifications after a burst of up to 10; what
// waits stays queued rather than being lost.
func TestNotifierRateLimit(t *testing.T) {
	rcv := newReceiver(t, nil)
	r := testReceiver(rcv.URL)
	r.RatePerMinute = 120 // a burst of 10, then one every 500ms
	res := &results{}
	q := startNotifier(t, r, res)
	start := time.Now()
	for i := range 12 {
		q.enqueue(firing(fmt.Sprintf("app%d", i)))
	}
	testutil.WaitFor(t, 10*time.Second, "12 deliveries", func() bool { return res.count(ResultSent) == 12 })
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("12 notifications at 120/minute with a burst of 10 took %s, want ≥ 1s", d)
	}
	got := received[jsonBody](t, rcv)
	for i, b := range got {
		if want := fmt.Sprintf("app%d", i); b.App != want {
			t.Errorf("notification %d is %s's, want %s's (queue order)", i, b.App, want)
		}
	}
}

// A full queue drops its oldest notification and counts it; enqueue
// never waits for the receiver.
func TestNotifierQueueDropsOldest(t *testing.T) {
	rcv := newHangingReceiver(t)
	r := testReceiver(rcv.URL)
	r.QueueSize = 4
	res := &results{}
	q := newNotifier(r, discard, res.add)
	// Not running: nothing leaves the queue.
	for i := range 10 {
		q.enqueue(firing(fmt.Sprintf("app%d", i)))
	}
	var apps []string
	for _, n := range q.queue {
		apps = append(apps, n.App)
	}
	if diff := cmp.Diff([]string{"app6", "app7", "app8", "app9"}, apps); diff != "" {
		t.Errorf("queue (-want +got):\n%s", diff)
	}
	if got := res.count(ResultDropped); got != 6 {
		t.Errorf("dropped %d, want 6", got)
	}
	go q.run()
	q.close(100 * time.Millisecond) // the hanging attempt is abandoned at the deadline
}

// A receiver that is down (it accepts and never answers) delays neither
// the request path nor event delivery: 10k observations and 10k events
// (each a notification) complete at once while the receiver hangs, and
// shutdown is bounded by the flush deadline.
func TestDownReceiverBlocksNothing(t *testing.T) {
	rcv := newHangingReceiver(t)
	cfg := config.NewAlerts()
	cfg.Receivers = []*config.Receiver{testReceiver(rcv.URL)}
	events := telemetry.NewEvents(nil, 0)
	sup := supervisor.New(config.Default(), supervisor.Options{Events: events})
	res := &results{}
	m := New(cfg, sup, events, Options{Notified: res.add, Flush: 200 * time.Millisecond, Every: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()

	start := time.Now()
	e := &telemetry.AccessEntry{App: "web", Status: 502}
	for range 10000 {
		m.Observe(e)
	}
	observed := time.Since(start)
	start = time.Now()
	for i := range 10000 {
		events.Emit(telemetry.Event{Type: telemetry.EventCertExpiring, Value: fmt.Sprintf("cert%d.example", i)})
	}
	emitted := time.Since(start)
	// Generous bounds for a busy machine; a blocked path would take the
	// receiver's 5s timeout at least.
	if observed > time.Second || emitted > 2*time.Second {
		t.Errorf("10k observations took %s and 10k events %s with the receiver down", observed, emitted)
	}
	testutil.WaitFor(t, 10*time.Second, "the queue to overflow", func() bool { return res.count(ResultDropped) > 0 })
	// The first notification reaches the hanging receiver on its own
	// goroutine, which a busy machine may run after the overflow.
	testutil.WaitFor(t, 10*time.Second, "the receiver to be tried", func() bool { return rcv.requests() > 0 })
	start = time.Now()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stopping took %s with the receiver down, want about the 200ms flush bound", d)
	}
}

// close delivers what is queued (the resolved notifications of a
// shutdown, say) within its bound, and abandons the rest at the bound.
func TestNotifierFlushesOnClose(t *testing.T) {
	tests := []struct {
		name      string
		delay     time.Duration // the receiver's answer time
		bound     time.Duration
		delivered int
	}{
		{"within the bound", 50 * time.Millisecond, 5 * time.Second, 3},
		{"past the bound", time.Second, 200 * time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, func(int) int { time.Sleep(tt.delay); return http.StatusOK })
			res := &results{}
			q := newNotifier(testReceiver(rcv.URL), discard, res.add)
			for i := range 3 {
				q.enqueue(firing(fmt.Sprintf("app%d", i)))
			}
			go q.run()
			start := time.Now()
			q.close(tt.bound)
			if d := time.Since(start); d > tt.bound+time.Second {
				t.Errorf("close took %s, bound %s", d, tt.bound)
			}
			if got := res.count(ResultSent); got != tt.delivered {
				t.Errorf("sent %d, want %d (results %v)", got, tt.delivered, res.list())
			}
			if got := len(res.list()); got != 3 {
				t.Errorf("%d results for 3 notifications: %v", got, res.list())
			}
		})
	}
}

// A 429 or 503 with Retry-After is tried again no sooner than it asks
// (up to the back-off's cap), not after the shorter back-off.
func TestNotifierRetryAfter(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		n := len(at)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	t.Cleanup(srv.Close)
	res := &results{}
	q := newNotifier(testReceiver(srv.URL), discard, res.add)
	q.retryBase, q.retryMax = 20*time.Millisecond, 10*time.Second
	go q.run()
	t.Cleanup(func() { q.close(time.Second) })
	q.enqueue(firing("web"))
	testutil.WaitFor(t, 15*time.Second, "the retry is sent", func() bool { return res.count(ResultSent) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if gap := at[1].Sub(at[0]); gap < 900*time.Millisecond {
		t.Errorf("retried %s after a 429 with Retry-After: 1, want ≥ 1s", gap)
	}
}

// The manager reads autoscale's at-max state from the supervisor: the
// alert fires while the app's autoscale status says at max and resolves
// when it no longer does (autoscale emits no event at the end).
func TestManagerAutoscaleAtMax(t *testing.T) {
	cfg, err := config.Parse("g.yaml", []byte("apps:\n  web:\n    command: x\n    instances: 2\n    autoscale:\n      max: 2\n      out: [{metric: inflight_per_instance, above: 4}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	rcv := newReceiver(t, nil)
	ac := config.NewAlerts()
	ac.Receivers = []*config.Receiver{testReceiver(rcv.URL)}
	events := telemetry.NewEvents(nil, 0)
	sup := supervisor.New(cfg, supervisor.Options{Events: events})
	m := New(ac, sup, events, Options{Every: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	web := sup.Apps()[0]
	web.SetAutoscaleStatus(&supervisor.AutoscaleStatus{Min: 1, Max: 2, AtMax: true, LastDecision: "at max: inflight_per_instance 6 > 4 for 30s"})
	testutil.WaitFor(t, 10*time.Second, "the firing notification", func() bool { return len(received[jsonBody](t, rcv)) == 1 })
	web.SetAutoscaleStatus(&supervisor.AutoscaleStatus{Min: 1, Max: 2})
	testutil.WaitFor(t, 10*time.Second, "the resolved notification", func() bool { return len(received[jsonBody](t, rcv)) == 2 })
	got := received[jsonBody](t, rcv)
	for i, want := range []string{Firing, Resolved} {
		if got[i].Alert != AutoscaleAtMax || got[i].Status != want || got[i].App != "web" {
			t.Errorf("notification %d: %+v, want %s %s of web", i, got[i], AutoscaleAtMax, want)
		}
	}
}

// A webhook URL often holds its secret in the path (Slack's
// /services/T…/B…/secret): a failed attempt's log line names the
// receiver and the network error, never the URL.
func TestNotifierLogsNoURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every attempt is refused
	var buf bytes.Buffer
	var mu sync.Mutex
	res := &results{}
	r := testReceiver("http://" + addr + "/services/T0/B0/s3cr3t-token?key=s3cr3t-key")
	r.MaxAttempts = 1
	q := newNotifier(r, slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil)), res.add)
	go q.run()
	q.enqueue(firing("web"))
	testutil.WaitFor(t, 10*time.Second, "the attempt to fail", func() bool { return res.count(ResultFailed) == 1 })
	q.close(time.Second)
	mu.Lock()
	defer mu.Unlock()
	if s := buf.String(); strings.Contains(s, "s3cr3t") || !strings.Contains(s, "ops") {
		t.Errorf("log names the URL's secret or not the receiver:\n%s", s)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
