package gateway_test

import (
	"bufio"
	"cmp"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
)

// A GET cut off by two instances in turn, neither exit recorded yet (both
// processes killed at once, a moment before the supervisor reaps them),
// is judged on the exits when they come: killed from outside, it is held
// and served by a replacement; dead of the request, or no exit at all
// within the wait, it is a query of death and gets its 502 with no third
// attempt. The wait is one: an instance whose exit it did not see is not
// waited for again. And it ends with the request's deadline.
func TestTwoCutOffsJudgedOnTheirExits(t *testing.T) {
	killed := func(pid int) *pool.Exit { return &pool.Exit{PID: pid, Detail: "killed by SIGKILL", Signal: "SIGKILL"} }
	crashed := func(pid int) *pool.Exit { return &pool.Exit{PID: pid, Detail: "exited with code 3"} }
	for _, tc := range []struct {
		name string
		// exits are the instances' exits in the order they cut the
		// request off, recorded once both did; nil: none comes.
		exits [2]func(pid int) *pool.Exit
		// wait is how long the gateway waits for an exit.
		wait           time.Duration
		requestTimeout time.Duration // 20s when 0
		wantStatus     int
		wantCause      string
		wantDetail     string
		wantAttempts   int
		// tookAtLeast, tookUnder bound when the answer comes, from the
		// request's send.
		tookAtLeast, tookUnder time.Duration
	}{
		{name: "killed from outside", exits: [2]func(int) *pool.Exit{killed, killed}, wait: 10 * time.Second,
			wantStatus: 200, wantAttempts: 3},
		{name: "died of the request", exits: [2]func(int) *pool.Exit{crashed, crashed}, wait: 10 * time.Second,
			wantStatus: 502, wantCause: "upstream_reset", wantDetail: "exited with code 3", wantAttempts: 2},
		{name: "no exit", wait: 300 * time.Millisecond,
			wantStatus: 502, wantCause: "upstream_reset", wantDetail: "closed before response headers", wantAttempts: 2,
			tookAtLeast: 300 * time.Millisecond},
		// The first was killed; the second closed on the request and
		// lives on: one wait, then the 502 at once, no instance being
		// ready (the second is not waited for twice).
		{name: "one killed, the other lives on", exits: [2]func(int) *pool.Exit{killed, nil}, wait: 2 * time.Second,
			wantStatus: 502, wantCause: "upstream_reset", wantDetail: "closed before response headers", wantAttempts: 2,
			tookAtLeast: 2 * time.Second, tookUnder: 4 * time.Second},
		// The wait ends with the request: its deadline comes first.
		{name: "deadline first", wait: 10 * time.Second, requestTimeout: time.Second,
			wantStatus: 502, wantCause: "upstream_reset", wantDetail: "closed before response headers", wantAttempts: 2,
			tookAtLeast: time.Second, tookUnder: 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Each app reads the GET and drops the connection.
			cut := make(chan int, 2) // which instance, as each cuts it off
			cutter := func(i int) func(c net.Conn, br *bufio.Reader) {
				return func(c net.Conn, br *bufio.Reader) {
					if _, err := http.ReadRequest(br); err == nil {
						cut <- i
					}
				}
			}
			p := pool.New("web", 100)
			var cutters []*pool.Member
			for i, id := range []string{"web-1", "web-2"} {
				cutters = append(cutters, addReady(t, p, id, rawBackend(t, cutter(i)), 4242+i))
			}
			gw, entries := cutOffGateway(t, p, cmp.Or(tc.requestTimeout, 20*time.Second))
			gateway.SetExitWait(gw, tc.wait)
			addr := serve(t, "h1", gw)
			got := getLater(t, addr)
			var order []*pool.Member // as they were tried
			for range 2 {
				select {
				case i := <-cut:
					order = append(order, cutters[i])
				case a := <-got:
					t.Fatalf("answered %d %q (%v) before both instances cut the request off", a.status, a.cause, a.err)
				case <-time.After(10 * time.Second):
					t.Fatal("the request did not reach both instances within 10s")
				}
			}
			if tc.exits[0] != nil {
				// Long enough for a verdict that does not wait for the
				// exits to show.
				time.Sleep(200 * time.Millisecond)
				select {
				case a := <-got:
					t.Fatalf("answered %d %q before the exits were recorded; want the verdict to wait for them", a.status, a.cause)
				default:
				}
				for i, m := range order {
					exit := tc.exits[i]
					if exit == nil {
						continue
					}
					m.SetState(pool.Crashed)
					e := exit(m.PID())
					e.At = time.Now() // after the request was sent
					m.SetExit(e)
					p.Remove(m)
				}
				if tc.wantStatus == 200 {
					addReady(t, p, "web-3", replacementBackend(t), 4343)
				}
			}
			var a clientAnswer
			select {
			case a = <-got:
			case <-time.After(15 * time.Second):
				t.Fatal("no answer within 15s")
			}
			if a.err != nil || a.status != tc.wantStatus || a.cause != tc.wantCause || !strings.Contains(a.body, tc.wantDetail) {
				t.Errorf("answer %d %q %q (%v); want %d %q with %q", a.status, a.cause, a.body, a.err, tc.wantStatus, tc.wantCause, tc.wantDetail)
			}
			if a.took < tc.tookAtLeast || tc.tookUnder > 0 && a.took >= tc.tookUnder {
				t.Errorf("the answer came after %v; want it after %v at least, and within %v", a.took, tc.tookAtLeast, tc.tookUnder)
			}
			select {
			case e := <-entries:
				if e.Attempts != tc.wantAttempts {
					t.Errorf("access entry: %d attempts; want %d", e.Attempts, tc.wantAttempts)
				}
			case <-time.After(15 * time.Second):
				t.Error("no access entry within 15s")
			}
		})
	}
}
