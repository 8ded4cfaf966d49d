package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/google/go-cmp/cmp"
)

// A request whose instance's process dies under it is answered at once,
// whether or not the supervisor has recorded the exit yet; its access
// entry names the exit, and the exit counts the request, when the exit
// comes (here the test records it, as the supervisor would), or the entry
// is written as it is when its window ends without one. Nothing is
// written between: the entry is written once, whole.
func TestAccessEntryWaitsForTheExitNotTheAnswer(t *testing.T) {
	const pid = 4242
	for _, tc := range []struct {
		name string
		// exitFirst: the exit is recorded before the request is sent.
		exitFirst bool
		// exitAfterAnswer: recorded once the client has its answer;
		// else the entry's window ends first.
		exitAfterAnswer bool
		// wantNote: the entry's detail ends with the exit; wantFailed:
		// the exit counts the request.
		wantNote   bool
		wantFailed int64
	}{
		{name: "exit recorded before the request", exitFirst: true, wantNote: true, wantFailed: 1},
		{name: "exit recorded after the answer", exitAfterAnswer: true, wantNote: true, wantFailed: 1},
		{name: "no exit within the window", wantNote: false, wantFailed: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachFrontProtocol(t, func(t *testing.T, proto string) {
				// The app reads the request and drops the connection, as
				// a process does that dies under it.
				addr := rawBackend(t, func(c net.Conn, br *bufio.Reader) {
					if req, err := http.ReadRequest(br); err == nil {
						io.Copy(io.Discard, req.Body)
					}
				})
				cfg := config.Default()
				app := config.NewApp("web")
				app.Routes = config.PlainRoutes("/")
				app.HoldTimeout = config.Duration(200 * time.Millisecond)
				cfg.Apps = map[string]*config.App{"web": app}
				cfg.Order = []string{"web"}
				p := pool.New("web", 100)
				m := pool.NewMember("web-1", addr)
				p.Add(m)
				m.SetState(pool.Ready)
				m.SetPID(pid)
				t.Cleanup(func() { p.Remove(m) })

				var mu sync.Mutex
				var entries []telemetry.AccessEntry
				logged := func() []telemetry.AccessEntry {
					mu.Lock()
					defer mu.Unlock()
					return append([]telemetry.AccessEntry(nil), entries...)
				}
				gw := gateway.New(cfg, map[string]*pool.Pool{"web": p}, gateway.Options{Observe: func(e *telemetry.AccessEntry) {
					mu.Lock()
					entries = append(entries, *e)
					mu.Unlock()
				}})
				t.Cleanup(gw.Close)
				// The made-up pid's process is not seen dying: the window
				// is exitNoteWait's.
				gateway.SetProcessLives(gw, func(int) bool { return true })
				// The window ends when the test says.
				var windows []func()
				gateway.SetExitWindow(gw, func(d time.Duration, end func()) func() bool {
					if d != gateway.ExitNoteWait {
						t.Errorf("a window of %v started; want %v", d, gateway.ExitNoteWait)
					}
					mu.Lock()
					windows = append(windows, end)
					mu.Unlock()
					return func() bool { return false }
				})

				exit := &pool.Exit{PID: pid, Detail: "exited with code 3", At: time.Now()}
				if tc.exitFirst {
					m.SetExit(exit)
				}
				url := protoURL(proto, serve(t, proto, gw))
				resp, err := protoClient(t, proto).Post(url+"/orders", "text/plain", strings.NewReader("an order"))
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusBadGateway || resp.Header.Get("Gatehouse-Cause") != "upstream_reset" {
					t.Fatalf("answer %d %q; want 502 upstream_reset", resp.StatusCode, resp.Header.Get("Gatehouse-Cause"))
				}
				if !tc.exitFirst {
					// The client has its answer; nothing has told the
					// gateway of the exit yet, and the window is open.
					if got := logged(); len(got) != 0 {
						t.Fatalf("the access entry was written before the exit or the window's end: %+v", got)
					}
					if tc.exitAfterAnswer {
						m.SetExit(exit)
					} else {
						mu.Lock()
						ends := windows
						mu.Unlock()
						if len(ends) != 1 {
							t.Fatalf("%d windows started; want 1", len(ends))
						}
						ends[0]()
						// An exit after the window neither amends nor counts.
						m.SetExit(exit)
					}
				}
				got := logged()
				if len(got) != 1 {
					t.Fatalf("%d access entries: %+v; want 1", len(got), got)
				}
				e := got[0]
				note := "; instance web-1 (pid 4242) exited with code 3"
				wantDetail := "connection to " + addr + " closed before response headers"
				if tc.wantNote {
					wantDetail += note
				}
				type summary struct {
					Status        int
					Cause, Detail string
					Failed        int64
				}
				if diff := cmp.Diff(summary{502, "upstream_reset", wantDetail, tc.wantFailed},
					summary{e.Status, e.Cause, e.Detail, exit.Failed.Load()}); diff != "" {
					t.Errorf("access entry and exit count (-want +got):\n%s", diff)
				}
			})
		})
	}
}
