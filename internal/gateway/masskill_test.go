package gateway_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Every instance SIGKILLed at once under GET+POST load, the app slow to
// start again. The GETs the kill cut off reset two instances between them,
// but they did not kill them: they are held and served by the
// replacements, not condemned as a query of death. Only POSTs the dead
// instances already had fail, with 502 upstream_reset.
func TestAllInstancesKilledUnderLoad(t *testing.T) {
	t.Parallel()
	g := startFault(t, 2, func(a *config.App) {
		a.HoldTimeout = config.Duration(15 * time.Second)
		a.RequestTimeout = config.Duration(30 * time.Second)
		a.StartTimeout = config.Duration(20 * time.Second)
	}, "-start-delay", "1.5s")
	c := newClient(t, g, 40*time.Second)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	// halt stops the load and waits for it; a failed wait below halts it
	// too, when the test ends.
	halt := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	t.Cleanup(halt)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				switch w % 4 {
				case 0, 2:
					// Slow GETs: these are in flight when the kill comes
					// (a second in the app, so that even a machine slow
					// enough to queue everything else has some there).
					c.get("/sleep?d=1s")
				case 1:
					c.get("/")
				case 3:
					body := fmt.Sprintf("post %d/%d %s", w, i, strings.Repeat("x", 256))
					r := c.do(req{method: "POST", path: "/echo", body: body})
					if r.err == nil && r.status == 200 && r.body != body {
						t.Errorf("%v: echoed body differs from the %d bytes sent", r, len(body))
					}
				}
			}
		}()
	}

	// The kill must cut off requests in flight: wait until the load is in
	// its stride (every worker has had answers, so slow GETs sit in the
	// app), and then until each instance has some, however busy the
	// machine.
	testutil.WaitFor(t, 20*time.Second, "two answers per worker", func() bool { return len(c.all()) >= 32 })
	testutil.WaitFor(t, 10*time.Second, "requests in flight on both instances", func() bool {
		busy := 0
		for _, m := range g.Srv.Supervisor().App("web").Pool().Members() {
			if m.Inflight() >= 2 {
				busy++
			}
		}
		return busy == 2
	})
	p1, _ := pidOf(g, "web-1")
	p2, _ := pidOf(g, "web-2")
	if p1 == 0 || p2 == 0 {
		halt()
		t.Fatalf("pids before the kill: web-1 %d, web-2 %d", p1, p2)
	}
	killedAt := time.Now()
	killAll(t, p1, p2)
	testutil.WaitFor(t, 25*time.Second, "two replacements ready", func() bool {
		ready := 0
		for _, m := range g.Srv.Supervisor().App("web").Pool().Members() {
			if m.Routable() && m.PID() != p1 && m.PID() != p2 {
				ready++
			}
		}
		return ready == 2
	})
	replacedAfter := time.Since(killedAt)
	// Load on the replacements: two more rounds of every worker.
	answered := len(c.all())
	testutil.WaitFor(t, 20*time.Second, "requests served by the replacements", func() bool { return len(c.all()) >= answered+32 })
	halt()

	results := c.all()
	var gets, posts, failedGets, cutGets, heldGets int
	failedPosts := map[string]int{}
	for _, r := range results {
		if r.method == "GET" {
			gets++
			if r.err != nil || r.status != 200 {
				failedGets++
				t.Errorf("GET failed when every instance was killed: %v", r)
				if e, ok := accessFor(t, g, r.id); ok {
					t.Logf("  access: attempts %d retried %v instance %s detail %q", e.Attempts, e.RetriedCauses, e.Instance, e.Detail)
				}
			}
			continue
		}
		posts++
		if r.err == nil && r.status == 200 {
			continue
		}
		switch {
		case r.err != nil:
			failedPosts["error"]++
			t.Errorf("POST failed without an answer: %v", r)
		case r.status != 502 || r.cause != "upstream_reset":
			failedPosts[r.cause]++
			t.Errorf("failed POST: %v; want 502 upstream_reset (only a POST a dead instance already had may fail)", r)
		default:
			failedPosts[r.cause]++
		}
	}
	// The GETs the kill cut off: retried after upstream_reset, and served.
	byID := map[string]bool{}
	for _, r := range results {
		if r.method == "GET" && r.err == nil && r.status == 200 {
			byID[r.id] = true
		}
	}
	for _, e := range g.Access() {
		if byID[e.RequestID] && slices.Contains(e.RetriedCauses, "upstream_reset") {
			cutGets++
			if e.Held > 0 {
				heldGets++
			}
		}
	}
	if cutGets == 0 {
		// What the retries that were made were for, to tell a kill that
		// cut nothing from cut-off requests given another cause.
		retried := map[string]int{}
		cut := len(failedPosts) > 0
		for _, e := range g.Access() {
			for _, c := range e.RetriedCauses {
				retried[e.Method+" "+c]++
				cut = cut || c == "upstream_reset"
			}
		}
		if !cut {
			// Only on a machine so busy that no request was inside an
			// app at the kill: nothing was cut off, nothing to judge.
			t.Skipf("the kill cut off no request in flight (%d GETs; retries by cause %v): nothing to judge", gets, retried)
		}
		t.Errorf("no GET was retried after upstream_reset (%d GETs; retries by cause %v), though the kill cut off requests", gets, retried)
	}
	checkCauses(t, g, results)
	t.Logf("replacements ready %v after the kill; %d requests: %d GETs (%d failed; %d cut off by the kill and served, %d of them held), %d POSTs, failed POSTs by cause %v",
		replacedAfter.Round(10*time.Millisecond), len(results), gets, failedGets, cutGets, heldGets, posts, failedPosts)
}

// The other side of the rule: a GET that crashes whichever instance
// serves it, alone, resets two instances and is not sent to a third; the
// third keeps its process, and the 502 names the second exit, which
// counts the request.
func TestQueryOfDeathNotSentToThird(t *testing.T) {
	t.Parallel()
	g := startFault(t, 3, nil)
	c := newClient(t, g, 20*time.Second)
	before := map[string]int{}
	for _, id := range []string{"web-1", "web-2", "web-3"} {
		before[id], _ = pidOf(g, id)
	}
	r := c.get("/crash")
	if r.status != 502 || r.cause != "upstream_reset" {
		t.Fatalf("%v; want 502 upstream_reset", r)
	}
	e, ok := accessFor(t, g, r.id)
	if !ok {
		t.Fatalf("no access entry for %s", r.id)
	}
	if e.Attempts != 2 || !slices.Equal(e.RetriedCauses, []string{"upstream_reset"}) {
		t.Errorf("access entry: %d attempts, retried %v; want 2 attempts, retried [upstream_reset]", e.Attempts, e.RetriedCauses)
	}
	if !strings.Contains(e.Detail, "exited with code 3") {
		t.Errorf("access detail %q does not name the exit", e.Detail)
	}
	crashed := 0
	for id, pid := range before {
		if !testutil.ProcessAlive(pid) {
			crashed++
			continue
		}
		if now, _ := pidOf(g, id); now != pid {
			t.Errorf("%s: pid %d became %d", id, pid, now)
		}
	}
	if crashed != 2 {
		t.Errorf("%d instances crashed; want 2 (the query of death is not sent to a third)", crashed)
	}
	var failed int
	waitUntil(3*time.Second, func() bool {
		failed = 0
		for _, ev := range g.Events("exit") {
			failed += ev.Failed
		}
		return failed == 1
	})
	if failed != 1 {
		t.Errorf("exit events count %d failed requests; want 1 (the /crash GET, on the second exit)", failed)
	}
	checkCauses(t, g, c.all())
	t.Logf("%v: %d attempts, retried %v, %d instances crashed", r, e.Attempts, e.RetriedCauses, crashed)
}
