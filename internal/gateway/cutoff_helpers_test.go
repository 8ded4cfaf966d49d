package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Helpers of the tests of requests cut off by instances whose exits the
// test records, as the supervisor would: a pool of raw backends with
// made-up pids, a gateway over it, and a client's answer awaited.

// cutOffGateway is a gateway over p for one app, web, that holds a
// request up to 10 s for an instance, within requestTimeout; its access
// entries come on the channel. The made-up pids of p's members are taken
// to run on: an entry waits its exitNoteWait for their exits, no longer.
func cutOffGateway(t *testing.T, p *pool.Pool, requestTimeout time.Duration) (*gateway.Gateway, <-chan telemetry.AccessEntry) {
	t.Helper()
	cfg := config.Default()
	app := config.NewApp("web")
	app.Routes = config.PlainRoutes("/")
	app.HoldTimeout = config.Duration(10 * time.Second)
	app.RequestTimeout = config.Duration(requestTimeout)
	cfg.Apps = map[string]*config.App{"web": app}
	cfg.Order = []string{"web"}
	entries := make(chan telemetry.AccessEntry, 4)
	gw := gateway.New(cfg, map[string]*pool.Pool{"web": p}, gateway.Options{Observe: func(e *telemetry.AccessEntry) { entries <- *e }})
	t.Cleanup(gw.Close)
	gateway.SetProcessLives(gw, func(int) bool { return true })
	return gw, entries
}

// addReady adds to p a ready member id at addr, its process pid; it
// leaves p when the test ends.
func addReady(t *testing.T, p *pool.Pool, id, addr string, pid int) *pool.Member {
	t.Helper()
	m := pool.NewMember(id, addr)
	p.Add(m)
	m.SetState(pool.Ready)
	m.SetPID(pid)
	t.Cleanup(func() { p.Remove(m) })
	return m
}

// replacementBackend answers one request per connection with 200
// "replacement".
func replacementBackend(t *testing.T) string {
	return rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		if _, err := http.ReadRequest(br); err == nil {
			io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 11\r\nConnection: close\r\n\r\nreplacement")
		}
	})
}

// clientAnswer is what a client got, and when.
type clientAnswer struct {
	status      int
	cause, body string
	took        time.Duration // from the request's send
	err         error
}

// getLater sends GET /report to the gateway at addr over HTTP/1.1 on a
// goroutine of its own; the answer comes on the channel.
func getLater(t *testing.T, addr string) <-chan clientAnswer {
	got := make(chan clientAnswer, 1)
	c := protoClient(t, "h1")
	start := time.Now()
	go func() {
		resp, err := c.Get("http://" + addr + "/report")
		if err != nil {
			got <- clientAnswer{err: err}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- clientAnswer{resp.StatusCode, resp.Header.Get("Gatehouse-Cause"), string(body), time.Since(start), nil}
	}()
	return got
}
