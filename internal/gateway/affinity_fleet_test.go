package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// With affinity on, 100 clients each stay on one instance across 50
// requests; recycling that instance under load moves them with 0 failed
// requests. Real fault-app processes under the real supervisor, each
// client with its own cookie jar, over each protocol.

const fleetClients = 100

// fleet is the fault app's instances under a real supervisor, with a
// gateway (affinity on) over its pools served to clients speaking proto;
// it returns the gateway's URL for them.
func fleet(t *testing.T, proto string, n int) (*harness.Gatehouse, string) {
	t.Helper()
	cfg, app := harness.FaultApp(t, n)
	app.Affinity = true
	// An unhealthy instance moves its clients, as it should: probes
	// lenient enough for a CI machine running the -race suite beside the
	// plain one, where 1 s timeouts three times in a row were seen.
	app.Health.Timeout = config.Duration(5 * time.Second)
	app.Health.UnhealthyThreshold = 5
	g := harness.Start(t, cfg)
	waitReady(t, g, n)
	// Only this gateway is sent requests: it alone holds upstream
	// connections to the instances, and closes them as they go. What
	// failed or was retried is shown if the test fails: a move is
	// explained by it, or by an instance's health events.
	var mu sync.Mutex
	odd := map[string]int{}
	gw := gateway.New(cfg, g.Srv.Supervisor().Pools(), gateway.Options{Observe: func(e *telemetry.AccessEntry) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range e.RetriedCauses {
			odd["retried after "+c+" on "+e.Instance]++
		}
		if e.Cause != "" {
			odd[e.Cause]++
		}
	}})
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("failed or retried requests: %v", odd)
			for _, e := range g.Events("unhealthy", "healthy", "exit") {
				t.Logf("event %s %s %s %s", e.Time.Format("15:04:05.000"), e.Type, e.Instance, e.Detail)
			}
		}
	})
	return g, protoURL(proto, serve(t, proto, gw))
}

// browser is one client with its own cookie jar. Only its goroutine uses
// it, except n.
type browser struct {
	http *http.Client
	// seen is the process ("web-2 4242") of every answer, in order.
	seen []string
	// sets counts the answers that set the affinity cookie.
	sets  int
	fails []string
	n     atomic.Int64 // requests done
	// firstSeen is seen[0], for the test's goroutine while the browser's
	// runs.
	firstSeen atomic.Pointer[string]
}

func (b *browser) first() string {
	if p := b.firstSeen.Load(); p != nil {
		return *p
	}
	return ""
}

// newBrowsers makes n browsers speaking proto, over one transport: over
// HTTP/1.1 as many connections as browsers, over HTTP/2 their streams on
// one.
func newBrowsers(t *testing.T, proto string, n int) []*browser {
	tr := protoClient(t, proto).Transport.(*http.Transport)
	tr.MaxIdleConnsPerHost = n
	bs := make([]*browser, n)
	for i := range bs {
		jar, _ := cookiejar.New(nil)
		bs[i] = &browser{http: &http.Client{Jar: jar, Transport: tr, Timeout: 20 * time.Second}}
	}
	return bs
}

// get sends GET /, which the fault app answers with its instance id and
// pid.
func (b *browser) get(url string) {
	defer b.n.Add(1)
	resp, err := b.http.Get(url + "/")
	if err != nil {
		b.fails = append(b.fails, err.Error())
		return
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		b.fails = append(b.fails, fmt.Sprintf("%d %s %v: %.100s", resp.StatusCode, resp.Header.Get("Gatehouse-Cause"), err, body))
		return
	}
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "ARRAffinity=") {
			b.sets++
		}
	}
	b.seen = append(b.seen, string(body))
	if len(b.seen) == 1 {
		b.firstSeen.Store(&b.seen[0])
	}
}

// moves counts the answers that came from another process than the one
// before.
func (b *browser) moves() int {
	n := 0
	for i := 1; i < len(b.seen); i++ {
		if b.seen[i] != b.seen[i-1] {
			n++
		}
	}
	return n
}

// browse has every browser send requests until stop is closed, a few
// milliseconds apart so that 100 of them leave the instances room to
// start on a small machine.
func browse(bs []*browser, url string, stop <-chan struct{}) (wait func()) {
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Go(func() {
			tick := time.NewTicker(5 * time.Millisecond)
			defer tick.Stop()
			for {
				b.get(url)
				select {
				case <-stop:
					return
				case <-tick.C:
				}
			}
		})
	}
	return wg.Wait
}

// eachDid waits until every browser has done n more requests than in
// from (nil: than none).
func eachDid(t *testing.T, bs []*browser, from []int64, n int64, what string) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, what, func() bool {
		for i, b := range bs {
			base := int64(0)
			if from != nil {
				base = from[i]
			}
			if b.n.Load() < base+n {
				return false
			}
		}
		return true
	})
}

func counts(bs []*browser) []int64 {
	out := make([]int64, len(bs))
	for i, b := range bs {
		out[i] = b.n.Load()
	}
	return out
}

// TestAffinityKeepsClientsOnOneInstance: 100 clients × 50 requests (20
// under the race detector); each is answered by one instance throughout,
// and the clients spread over the instances.
func TestAffinityKeepsClientsOnOneInstance(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		_, url := fleet(t, proto, 3)
		bs := newBrowsers(t, proto, fleetClients)
		requests := 50
		if raceEnabled {
			requests = 20 // the race detector slows the request path several times
		}
		var wg sync.WaitGroup
		for _, b := range bs {
			wg.Go(func() {
				for range requests {
					b.get(url)
				}
			})
		}
		wg.Wait()
		perInstance := map[string]int{}
		for i, b := range bs {
			if len(b.fails) > 0 {
				t.Errorf("client %d: %d failed requests, first: %s", i, len(b.fails), b.fails[0])
			}
			if m := b.moves(); m != 0 || b.sets != 1 {
				t.Errorf("client %d: answered by %d processes (%s), cookie set %d times; want 1 and once", i, m+1, distinct(b.seen), b.sets)
			}
			if len(b.seen) > 0 {
				perInstance[b.seen[0]]++
			}
		}
		t.Logf("%s: clients per instance: %v", proto, perInstance)
		if len(perInstance) != 3 {
			t.Errorf("clients per instance %v: want them spread over the 3", perInstance)
		}
		for inst, n := range perInstance {
			if n < fleetClients/10 {
				t.Errorf("%s has %d of %d clients: not spread", inst, n, fleetClients)
			}
		}
	})
}

func distinct(seen []string) string {
	s := slices.Clone(seen)
	slices.Sort(s)
	return strings.Join(slices.Compact(s), ", ")
}

// TestAffinityRecycleMovesClients: the instance with the most clients is
// recycled (drain-first) while the 100 clients keep sending. No request
// fails; its clients move at once to another instance, their cookie
// rewritten, and stay there; the others never move.
func TestAffinityRecycleMovesClients(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		g, url := fleet(t, proto, 3)
		bs := newBrowsers(t, proto, fleetClients)
		stop := make(chan struct{})
		wait := browse(bs, url, stop)
		eachDid(t, bs, nil, 3, "every client pinned")
		victim := busiest(bs)
		id, _, _ := strings.Cut(victim, " ")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := g.Srv.Supervisor().App("web").Recycle(ctx, id, "test", func(f string, args ...any) { t.Logf(f, args...) })
		if err != nil {
			close(stop)
			wait()
			t.Fatalf("recycle %s: %v", id, err)
		}
		eachDid(t, bs, counts(bs), 5, "5 requests per client after the recycle")
		close(stop)
		wait()
		checkMoved(t, bs, victim)
	})
}

// TestAffinityKilledInstanceMovesClients: the instance with the most
// clients is SIGKILLed under load and restarts under the same id. No GET
// fails (cut-off ones are retried); its clients move to another instance
// and stay there: the restarted process is another one, which their
// cookie does not name.
func TestAffinityKilledInstanceMovesClients(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		g, url := fleet(t, proto, 3)
		bs := newBrowsers(t, proto, fleetClients)
		stop := make(chan struct{})
		wait := browse(bs, url, stop)
		eachDid(t, bs, nil, 3, "every client pinned")
		victim := busiest(bs)
		id, _, _ := strings.Cut(victim, " ")
		pid, _ := pidOf(g, id)
		if pid == 0 {
			close(stop)
			wait()
			t.Fatalf("no pid for %s", id)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			close(stop)
			wait()
			t.Fatal(err)
		}
		testutil.WaitFor(t, 20*time.Second, id+" restarted and ready", func() bool {
			for _, m := range g.Srv.Supervisor().App("web").Pool().Members() {
				if m.ID == id && m.PID() != pid && m.Routable() {
					return true
				}
			}
			return false
		})
		eachDid(t, bs, counts(bs), 5, "5 requests per client after the restart")
		close(stop)
		wait()
		checkMoved(t, bs, victim)
	})
}

// busiest is the process most clients were first answered by.
func busiest(bs []*browser) string {
	n := map[string]int{}
	best := ""
	for _, b := range bs {
		first := b.first()
		n[first]++
		if best == "" || n[first] > n[best] {
			best = first
		}
	}
	return best
}

// checkMoved checks that no request failed, that the clients victim had
// moved once, their cookie rewritten, to another process they then kept,
// and that the other clients never moved.
func checkMoved(t *testing.T, bs []*browser, victim string) {
	t.Helper()
	moved := 0
	for i, b := range bs {
		if len(b.fails) > 0 {
			t.Errorf("client %d: %d failed requests, first: %s", i, len(b.fails), b.fails[0])
		}
		if len(b.seen) == 0 {
			continue
		}
		want := 0
		if b.seen[0] == victim {
			want = 1
			moved++
			if last := b.seen[len(b.seen)-1]; last == victim {
				t.Errorf("client %d: still answered by %s", i, victim)
			}
		}
		if m := b.moves(); m != want || b.sets != want+1 {
			t.Errorf("client %d (first on %s): moved %d times, cookie set %d times; want %d and %d (processes: %s)",
				i, b.seen[0], m, b.sets, want, want+1, distinct(b.seen))
		}
	}
	t.Logf("%d of %d clients were on %s and moved", moved, len(bs), victim)
	if moved == 0 {
		t.Errorf("no client was on %s", victim)
	}
}
