package gateway_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A GET cut off alone by the only instance, its exit not yet recorded,
// finds no instance to retry on: it is held, and the exit decides (the
// test records it, as the supervisor would). One that says the process
// died of the request ends the hold with a 502 that names it; one from
// outside (SIGKILL) lets the retry wait for the replacement; none within
// a moment (the app lives on) is the request's own.
func TestLoneCutOffHeldUntilTheExitTells(t *testing.T) {
	for _, tc := range []struct {
		name string
		exit *pool.Exit // nil: none comes
		// replaced: a replacement instance is added once the request is
		// held, after the exit.
		replaced   bool
		wantStatus int
		wantCause  string
		wantDetail string // a part of the answer's detail
	}{
		{name: "died of the request", exit: &pool.Exit{PID: 4242, Detail: "exited with code 3"},
			wantStatus: 502, wantCause: "upstream_reset", wantDetail: "; instance web-1 (pid 4242) exited with code 3"},
		{name: "killed from outside", exit: &pool.Exit{PID: 4242, Detail: "killed by SIGKILL", Signal: "SIGKILL"}, replaced: true,
			wantStatus: 200},
		{name: "no exit", wantStatus: 502, wantCause: "upstream_reset", wantDetail: "closed before response headers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The app reads the GET and drops the connection.
			cut := rawBackend(t, func(c net.Conn, br *bufio.Reader) { http.ReadRequest(br) })
			p := pool.New("web", 100)
			m := addReady(t, p, "web-1", cut, 4242)
			gw, entries := cutOffGateway(t, p, 20*time.Second)
			addr := serve(t, "h1", gw)
			got := getLater(t, addr)
			if tc.exit != nil {
				testutil.WaitFor(t, 10*time.Second, "the retry held", func() bool { return p.Waiting() == 1 })
				m.SetState(pool.Crashed)
				tc.exit.At = time.Now() // after the request was sent
				m.SetExit(tc.exit)
				p.Remove(m)
			}
			if tc.replaced {
				select {
				case a := <-got:
					t.Fatalf("answered %d %q after an exit from outside; want the retry held for a replacement", a.status, a.cause)
				default:
				}
				addReady(t, p, "web-1", replacementBackend(t), 4343)
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
			wantFailed := int64(0)
			if tc.wantStatus == 502 && tc.exit != nil {
				wantFailed = 1
			}
			if tc.exit != nil && tc.exit.Failed.Load() != wantFailed {
				t.Errorf("the exit counts %d failed requests; want %d", tc.exit.Failed.Load(), wantFailed)
			}
			select {
			case e := <-entries:
				if e.Attempts != 1+btoi(tc.replaced) {
					t.Errorf("access entry: %d attempts; want %d", e.Attempts, 1+btoi(tc.replaced))
				}
			case <-time.After(10 * time.Second):
				t.Error("no access entry within 10s")
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
