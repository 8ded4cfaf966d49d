package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/config"
)

// TestUpgradePolicy: gatehouse forwards an HTTP/1.1 upgrade only to a
// protocol it lets through, WebSocket; any other (h2c above all) is
// refused with 400 and Gatehouse-Cause upgrade_refused, logged with that
// cause, and the app is never asked.
//
// An upgrade to h2c that reaches an app which accepts it (101, then
// HTTP/2 on the connection, as Go's h2c handler or any HTTP/2 server
// with cleartext upgrade does) is a tunnel to the app: every later
// stream on it goes past gatehouse's routes, limits and log, straight to
// the app. Where the test finds the tunnel open it shows that: a request
// for a path outside the app's routes, sent over it, reaches the app.
func TestUpgradePolicy(t *testing.T) {
	t.Parallel()
	const path = "/public/chat"
	refused := func(t *testing.T, r upgradeRun) {
		t.Helper()
		if r.status != 400 || r.cause != "upgrade_refused" {
			t.Errorf("upgrade answered %d, Gatehouse-Cause %q; want 400 upgrade_refused\nclient got %.400q", r.status, r.cause, r.head)
		}
		if len(r.reqs) != 0 {
			t.Errorf("the app got %s: a refused upgrade must not reach it", r.reqsString())
		}
		if e := r.d.entry(t, path); e.Status != 400 || e.Cause != "upgrade_refused" {
			t.Errorf("access entry of %s: %d %q (%s), want 400 upgrade_refused", path, e.Status, e.Cause, e.Detail)
		}
	}
	cases := []struct {
		name    string
		headers string // the upgrade's header lines, each ending in CRLF
		check   func(t *testing.T, r upgradeRun)
	}{
		{
			name: "h2c with HTTP2-Settings",
			// The settings payload is SETTINGS_MAX_CONCURRENT_STREAMS 100,
			// base64url as RFC 9113's predecessor had it (RFC 7540 §3.2.1).
			headers: "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABk\r\n",
			check:   refused,
		},
		{
			name:    "unlisted token foo",
			headers: "Connection: Upgrade\r\nUpgrade: foo\r\n",
			check:   refused,
		},
		{
			// The one that is let through.
			name:    "websocket still works",
			headers: "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
			check: func(t *testing.T, r upgradeRun) {
				if r.status != 101 {
					t.Fatalf("websocket upgrade answered %d %q; want 101 from the app\nclient got %.400q", r.status, r.cause, r.head)
				}
				if r.echo != "ping" {
					t.Errorf("through the tunnel the client got %q back (%v), want the app's echo \"ping\"", r.echo, r.echoErr)
				}
				if got := r.reqsString(); len(r.reqs) != 1 || r.reqs[0].URI != path {
					t.Errorf("the app got %s, want the one upgrade request for %s", got, path)
				}
			},
		},
	}
	eachWireInParallel(t, h1Wires, func(t *testing.T, w wire) {
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				app := newUpgradeApp(t)
				d := directWith(t, app.addr, w.frontOptions(), func(a *config.App) { a.Routes = config.PlainRoutes("/public/") })
				r := upgradeExchange(t, w, d, app, "GET "+path+" HTTP/1.1\r\nHost: x\r\n"+c.headers+"\r\n")
				c.check(t, r)
			})
		}
	})
}

// upgradeRun is what came of one upgrade request.
type upgradeRun struct {
	d      *direct
	status int
	cause  string
	head   []byte // the response head the client read
	// echo is what came back through a WebSocket tunnel for "ping".
	echo    string
	echoErr error
	reqs    []appReq // what the app received, HTTP/2 streams on a tunnel included
}

func (r upgradeRun) reqsString() string { return (&attackRun{reqs: r.reqs}).reqsString() }

// upgradeExchange sends req on a new connection over w and reads the
// answer's head. On a 101 it goes on as the protocol the client asked
// for: for WebSocket it sends "ping" and reads the echo; for h2c it
// speaks HTTP/2 and asks, on stream 3, for a path outside the app's
// routes, and fails the test with what the app answered.
func upgradeExchange(t *testing.T, w wire, d *direct, app *recApp, req string) upgradeRun {
	t.Helper()
	r := upgradeRun{d: d}
	c, err := dialH1(w, d.addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("write: %v", err)
	}
	head, err := readHeadOf(c, time.Now().Add(3*time.Second))
	r.head = head
	if err != nil {
		t.Fatalf("reading the answer's head: %v (got %.400q)", err, head)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil)
	if err != nil {
		t.Fatalf("answer %.400q: %v", head, err)
	}
	r.status, r.cause = resp.StatusCode, resp.Header.Get("Gatehouse-Cause")
	if r.status == http.StatusSwitchingProtocols {
		switch strings.ToLower(resp.Header.Get("Upgrade")) {
		case "websocket":
			io.WriteString(c, "ping")
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			b := make([]byte, 4)
			_, r.echoErr = io.ReadFull(c, b)
			r.echo = string(b)
		case "h2c":
			// The client talks HTTP/2 to the app, through gatehouse.
			h := h2RawOn(t, c, "http")
			if err := h.start(); err != nil {
				t.Errorf("the app answered 101 h2c but no HTTP/2 followed: %v", err)
				break
			}
			h.get(3, "/admin/secret")
			v, _ := h.await(h2Patience, settled(3))
			if st := v.Streams[3]; st != nil && st.Status != 0 {
				t.Errorf("through the h2c tunnel, GET /admin/secret (outside the routes [/public/]) was answered by the app: %d %q", st.Status, st.Body)
			}
		}
	}
	c.Close()
	r.reqs = app.settle(d)
	return r
}

// h2RawOn is dialH2 on a connection already open (after an upgrade).
func h2RawOn(t testing.TB, c net.Conn, scheme string) *h2Raw {
	h := &h2Raw{c: c, scheme: scheme, sent: map[uint32]int64{}, changed: make(chan struct{}), done: make(chan struct{})}
	h.view.Streams = map[uint32]*h2Stream{}
	h.w = http2.NewFramer(c, nil)
	h.w.AllowIllegalWrites = true
	h.enc = hpack.NewEncoder(&h.hbuf)
	go h.read()
	t.Cleanup(h.close)
	return h
}

// newUpgradeApp is an app that accepts every upgrade, as a careless one
// would, recording each request it reads: it answers 101 with the first
// token of Upgrade, then for h2c serves HTTP/2 on the connection (Go's
// x/net server, stream 1 being the upgrade request; each stream recorded
// with the method "h2 GET" and so on), for websocket and anything else
// echoes what it reads. A request without Upgrade is answered 200.
func newUpgradeApp(t testing.TB) *recApp {
	a := &recApp{}
	a.addr = rawBackend(t, func(c net.Conn, br *bufio.Reader) {
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, syscall.ECONNRESET) {
					a.record(appReq{Method: "!unreadable", URI: err.Error()})
				}
				return
			}
			body, _ := io.ReadAll(req.Body)
			q := appReq{Method: req.Method, URI: req.RequestURI, Host: req.Host, Header: req.Header, Body: string(body)}
			a.record(q)
			token, _, _ := strings.Cut(req.Header.Get("Upgrade"), ",")
			token = strings.ToLower(strings.TrimSpace(token))
			if token == "" {
				answerGot(c, q)
				continue
			}
			accept := ""
			if key := req.Header.Get("Sec-WebSocket-Key"); key != "" {
				sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
				accept = "Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n"
			}
			fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: %s\r\n%s\r\n", token, accept)
			if token == "h2c" {
				//lint:ignore SA1019 only x/net's ServeConn serves an Upgrade: h2c (UpgradeRequest); net/http has no such path.
				(&http2.Server{}).ServeConn(&bufferedConn{Conn: c, r: br}, &http2.ServeConnOpts{
					UpgradeRequest: req,
					Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						a.record(appReq{Method: "h2 " + r.Method, URI: r.RequestURI, Host: r.Host, Header: r.Header})
						io.WriteString(w, "the app, over h2c: "+r.RequestURI)
					}),
				})
				return
			}
			io.Copy(c, br)
			return
		}
	})
	return a
}

// bufferedConn reads c through r, which may hold bytes read ahead.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
