package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
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
			ok := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err == nil {
					io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nreplacement")
				}
			})
			cfg := config.Default()
			app := config.NewApp("web")
			app.Routes = config.PlainRoutes("/")
			app.HoldTimeout = config.Duration(10 * time.Second)
			app.RequestTimeout = config.Duration(20 * time.Second)
			cfg.Apps = map[string]*config.App{"web": app}
			cfg.Order = []string{"web"}
			p := pool.New("web", 100)
			m := pool.NewMember("web-1", cut)
			p.Add(m)
			m.SetState(pool.Ready)
			m.SetPID(4242)
			t.Cleanup(func() { p.Remove(m) })
			entries := make(chan telemetry.AccessEntry, 4)
			gw := gateway.New(cfg, map[string]*pool.Pool{"web": p}, gateway.Options{Observe: func(e *telemetry.AccessEntry) { entries <- *e }})
			t.Cleanup(gw.Close)
			// The made-up pid's process is not seen dying: with no exit,
			// the entry is written when exitNoteWait ends.
			gateway.SetProcessLives(gw, func(int) bool { return true })
			addr := serve(t, "h1", gw)

			type answer struct {
				status      int
				cause, body string
				err         error
			}
			got := make(chan answer, 1)
			go func() {
				resp, err := protoClient(t, "h1").Get("http://" + addr + "/report")
				if err != nil {
					got <- answer{err: err}
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got <- answer{resp.StatusCode, resp.Header.Get("Gatehouse-Cause"), string(body), nil}
			}()
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
				r := pool.NewMember("web-1", ok)
				p.Add(r)
				r.SetState(pool.Ready)
				r.SetPID(4343)
				t.Cleanup(func() { p.Remove(r) })
			}
			var a answer
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
