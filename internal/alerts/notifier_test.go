package alerts

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// outcomes records, in order, the results a notifier reports for the
// metrics.
type outcomes struct {
	mu  sync.Mutex
	all []string
}

func (o *outcomes) record(_, result string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.all = append(o.all, result)
}

func (o *outcomes) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.all...)
}

func (o *outcomes) count(result string) int {
	n := 0
	for _, r := range o.list() {
		if r == result {
			n++
		}
	}
	return n
}

func testReceiver() *config.Receiver {
	r := config.NewReceiver()
	r.Name, r.URL = "ops", receiverURL
	return r
}

// startNotifier runs a notifier to rcv until the test ends; it must be
// called in a synctest bubble, after newReceiver.
func startNotifier(t *testing.T, r *config.Receiver, rcv *receiver, out *outcomes) *notifier {
	t.Helper()
	q := newNotifier(r, discard, out.record)
	sendTo(q, rcv)
	go q.run()
	t.Cleanup(func() { q.close(time.Second) })
	return q
}

func firing(app string) Notification {
	return Notification{Key: Key{NoReadyInstance, app, ""}, Status: Firing, Summary: app + " has no ready instance", StartsAt: t0}
}

// gaps are the times between consecutive arrivals.
func gaps(at []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(at); i++ {
		out = append(out, at[i].Sub(at[i-1]))
	}
	return out
}

// Retries: attempts that fail with a 5xx, 429 or 408 are retried with
// back-off (1s, doubling) until max_attempts; a 4xx refusal is not
// retried.
func TestNotifierRetries(t *testing.T) {
	failFirst := func(k, status int) func(int, http.ResponseWriter) int {
		return func(n int, _ http.ResponseWriter) int {
			if n <= k {
				return status
			}
			return http.StatusOK
		}
	}
	tests := []struct {
		name        string
		answer      func(int, http.ResponseWriter) int
		maxAttempts int
		want        []string
		gaps        []time.Duration
		delivered   int
	}{
		{"fails twice then succeeds", failFirst(2, http.StatusInternalServerError), 5,
			[]string{ResultRetried, ResultRetried, ResultSent}, []time.Duration{time.Second, 2 * time.Second}, 1},
		{"429 is retried", failFirst(1, http.StatusTooManyRequests), 5, []string{ResultRetried, ResultSent}, []time.Duration{time.Second}, 1},
		{"408 is retried", failFirst(1, http.StatusRequestTimeout), 5, []string{ResultRetried, ResultSent}, []time.Duration{time.Second}, 1},
		{"gives up after max_attempts", failFirst(9, http.StatusBadGateway), 3,
			[]string{ResultRetried, ResultRetried, ResultFailed}, []time.Duration{time.Second, 2 * time.Second}, 0},
		{"a 4xx refusal is not retried", failFirst(9, http.StatusUnauthorized), 5, []string{ResultFailed}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rcv := newReceiver(t, tt.answer)
				r := testReceiver()
				r.MaxAttempts = tt.maxAttempts
				out := &outcomes{}
				q := startNotifier(t, r, rcv, out)
				q.enqueue(firing("web"))
				elapse(time.Minute)
				if diff := cmp.Diff(tt.want, out.list()); diff != "" {
					t.Errorf("results (-want +got):\n%s", diff)
				}
				if got := len(rcv.arrivals()); got != len(tt.gaps)+1 {
					t.Errorf("receiver got %d requests, want %d", got, len(tt.gaps)+1)
				}
				if diff := cmp.Diff(tt.gaps, gaps(rcv.arrivals())); diff != "" {
					t.Errorf("back-off between attempts (-want +got):\n%s", diff)
				}
				if got := len(received[jsonBody](t, rcv)); got != tt.delivered {
					t.Errorf("delivered %d, want %d", got, tt.delivered)
				}
			})
		})
	}
}

// A 429 or 503 with Retry-After is tried again no sooner than it asks,
// up to the back-off's cap, rather than after the shorter back-off.
func TestNotifierRetryAfter(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		gap        time.Duration
	}{
		{"429, Retry-After 3", http.StatusTooManyRequests, "3", 3 * time.Second},
		{"503, Retry-After past the cap", http.StatusServiceUnavailable, "600", time.Minute},
		{"503, Retry-After as a date", http.StatusServiceUnavailable, "Sat, 01 Jan 2000 00:00:05 GMT", 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rcv := newReceiver(t, func(n int, w http.ResponseWriter) int {
					if n == 1 {
						w.Header().Set("Retry-After", tt.retryAfter)
						return tt.status
					}
					return http.StatusOK
				})
				out := &outcomes{}
				q := startNotifier(t, testReceiver(), rcv, out)
				q.enqueue(firing("web"))
				elapse(2 * time.Minute)
				if diff := cmp.Diff([]string{ResultRetried, ResultSent}, out.list()); diff != "" {
					t.Fatalf("results (-want +got):\n%s", diff)
				}
				if got := gaps(rcv.arrivals()); len(got) != 1 || got[0] != tt.gap {
					t.Errorf("retried after %v, want %s", got, tt.gap)
				}
			})
		})
	}
}

// rate_per_minute spaces notifications after a burst of up to 10; what
// waits stays queued, in order, rather than being lost.
func TestNotifierRateLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rcv := newReceiver(t, nil)
		r := testReceiver()
		r.RatePerMinute = 120 // a burst of 10, then one every 500ms
		out := &outcomes{}
		q := startNotifier(t, r, rcv, out)
		start := time.Now()
		for i := range 12 {
			q.enqueue(firing(fmt.Sprintf("app%d", i)))
		}
		elapse(time.Minute)
		if got := out.count(ResultSent); got != 12 {
			t.Fatalf("sent %d of 12: %v", got, out.list())
		}
		var after []time.Duration
		for _, at := range rcv.arrivals() {
			after = append(after, at.Sub(start))
		}
		want := append(make([]time.Duration, 10), 500*time.Millisecond, time.Second)
		if diff := cmp.Diff(want, after); diff != "" {
			t.Errorf("arrivals after the first (-want +got):\n%s", diff)
		}
		for i, b := range received[jsonBody](t, rcv) {
			if want := fmt.Sprintf("app%d", i); b.App != want {
				t.Errorf("notification %d is %s's, want %s's (queue order)", i, b.App, want)
			}
		}
	})
}

// A full queue drops its oldest notification and counts it; enqueue
// never waits for the receiver.
func TestNotifierQueueDropsOldest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rcv := newHangingReceiver(t)
		r := testReceiver()
		r.QueueSize = 4
		out := &outcomes{}
		q := newNotifier(r, discard, out.record)
		sendTo(q, rcv)
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
		if got := out.count(ResultDropped); got != 6 {
			t.Errorf("dropped %d, want 6", got)
		}
		go q.run()
		q.close(100 * time.Millisecond) // the hanging attempt is abandoned at the deadline
	})
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
			synctest.Test(t, func(t *testing.T) {
				rcv := newReceiver(t, nil)
				rcv.delay = tt.delay
				out := &outcomes{}
				q := newNotifier(testReceiver(), discard, out.record)
				sendTo(q, rcv)
				for i := range 3 {
					q.enqueue(firing(fmt.Sprintf("app%d", i)))
				}
				go q.run()
				start := time.Now()
				q.close(tt.bound)
				if d := time.Since(start); d > tt.bound {
					t.Errorf("close took %s, bound %s", d, tt.bound)
				}
				if got := out.count(ResultSent); got != tt.delivered {
					t.Errorf("sent %d, want %d (results %v)", got, tt.delivered, out.list())
				}
				if got := len(out.list()); got != 3 {
					t.Errorf("%d results for 3 notifications: %v", got, out.list())
				}
			})
		})
	}
}

// A webhook URL often holds its secret in the path (Slack's
// /services/T…/B…/secret): a failed attempt's log line names the
// receiver and the network error, never the URL. The receiver is a
// closed port on loopback: the refusal is the real network's.
func TestNotifierLogsNoURL(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	out := &outcomes{}
	r := testReceiver()
	r.URL = "http://" + testutil.ClosedAddr(t) + "/services/T0/B0/s3cr3t-token?key=s3cr3t-key"
	r.MaxAttempts = 1
	q := newNotifier(r, slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil)), out.record)
	go q.run()
	q.enqueue(firing("web"))
	// close delivers what is queued before it returns.
	q.close(10 * time.Second)
	if got := out.list(); len(got) != 1 || got[0] != ResultFailed {
		t.Fatalf("results %v, want one failure", got)
	}
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
