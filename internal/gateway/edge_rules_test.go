package gateway_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// edgeApp is an app that says what it was sent: GET /anything answers
// {"path": …, "query": …, "headers": …} as JSON; /page answers 4 KiB of
// HTML; /framed sends its own X-Frame-Options; /events streams server-sent
// events, one per value received on events.
type edgeApp struct {
	addr   string
	events chan string
}

type echoed struct {
	Path    string              `json:"path"`
	Query   string              `json:"query"`
	Headers map[string][]string `json:"headers"`
}

var edgePage = strings.Repeat("<p>gatehouse serves this page, compressed when asked.</p>\n", 70)

func newEdgeApp(t testing.TB) *edgeApp {
	t.Helper()
	a := &edgeApp{events: make(chan string)}
	mux := http.NewServeMux()
	mux.HandleFunc("/page", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, edgePage)
	})
	mux.HandleFunc("/framed", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Server", "edge-app")
		io.WriteString(w, "framed")
	})
	mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for {
			select {
			case ev, ok := <-a.events:
				if !ok {
					return
				}
				fmt.Fprintf(w, "data: %s\n\n", ev)
				w.(http.Flusher).Flush()
			case <-r.Context().Done():
				return
			}
		}
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echoed{Path: r.URL.EscapedPath(), Query: r.URL.RawQuery, Headers: r.Header})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { close(a.events); srv.Close() })
	a.addr = ln.Addr().String()
	return a
}

// fromAddr is a client for proto whose connections come from the
// loopback address ip (127.0.0.2 …).
func fromAddr(t testing.TB, proto, ip string) *http.Client {
	c := protoClient(t, proto)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 3 * time.Second}
	c.Transport.(*http.Transport).DialContext = d.DialContext
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	// Some answers are megabytes (a static route's big file): under -race
	// beside the other packages' tests, protoClient's 5 s is too little.
	c.Timeout = 20 * time.Second
	return c
}

type edgeReq struct {
	method, path string
	header       http.Header
	from         string // the client's loopback address; default 127.0.0.1
	host         string // the request's Host; default the gateway's address
}

type edgeAnswer struct {
	status int
	header http.Header
	body   []byte
}

func (d *direct) send(t *testing.T, proto string, q edgeReq) edgeAnswer {
	t.Helper()
	if q.method == "" {
		q.method = http.MethodGet
	}
	if q.from == "" {
		q.from = "127.0.0.1"
	}
	req, err := http.NewRequest(q.method, protoURL(proto, d.addr)+q.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range q.header {
		req.Header[k] = v
	}
	if q.host != "" {
		req.Host = q.host
	}
	if req.Header.Get("Accept-Encoding") == "" {
		req.Header.Set("Accept-Encoding", "identity") // Go's client would ask for gzip and hide it
	}
	resp, err := fromAddr(t, proto, q.from).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", q.method, q.path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", q.method, q.path, err)
	}
	return edgeAnswer{status: resp.StatusCode, header: resp.Header, body: body}
}

func (a edgeAnswer) echoed(t *testing.T) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Fatalf("the app's echo: %v (status %d, body %q)", err, a.status, a.body)
	}
	return e
}

// Paths: strip_prefix, rewrite with add_prefix, and redirects reach the
// app (or the client) as configured, over every protocol; the access log
// keeps the client's path and the one the app was sent.
func TestRoutePathRules(t *testing.T) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := newEdgeApp(t)
		d := newDirect(t, proto, app.addr, func(a *config.App) {
			a.Routes = []config.Route{
				{Match: "/api/", StripPrefix: true},
				{Match: "/old/", Rewrite: &config.Rewrite{From: "^/old/(.*)$", To: "/new/$1"}, AddPrefix: "/v1"},
				{Match: "/moved/", StripPrefix: true, Redirect: &config.Redirect{To: "https://example.com/docs{path}{query}", Status: 301}},
				{Match: "/"},
			}
		})
		for _, tt := range []struct {
			path, appPath, logged string
		}{
			{"/api/items?x=1", "/items", "/items"},
			{"/api/", "/", "/"},
			{"/api/a%2Fb", "/a%2Fb", "/a%2Fb"}, // logged as the client's decoded path, /api/a/b
			{"/old/page", "/v1/new/page", "/v1/new/page"},
			{"/plain", "/plain", ""},
		} {
			t.Run(tt.path, func(t *testing.T) {
				got := d.send(t, proto, edgeReq{path: tt.path})
				if got.status != 200 {
					t.Fatalf("status %d, body %q", got.status, got.body)
				}
				e := got.echoed(t)
				if e.Path != tt.appPath {
					t.Errorf("the app saw %q, want %q", e.Path, tt.appPath)
				}
				path, _, _ := strings.Cut(tt.path, "?")
				entry := d.entry(t, strings.ReplaceAll(path, "%2F", "/"))
				if entry.AppPath != tt.logged {
					t.Errorf("access log app_path %q, want %q", entry.AppPath, tt.logged)
				}
			})
		}
		t.Run("strip_prefix tells the app", func(t *testing.T) {
			e := d.send(t, proto, edgeReq{path: "/api/x", header: http.Header{"X-Forwarded-Prefix": {"/forged"}}}).echoed(t)
			if got := e.Headers["X-Forwarded-Prefix"]; !cmp.Equal(got, []string{"/api"}) {
				t.Errorf("X-Forwarded-Prefix %q, want [/api]", got)
			}
		})
		t.Run("redirect", func(t *testing.T) {
			got := d.send(t, proto, edgeReq{path: "/moved/guide?lang=en"})
			if got.status != 301 || got.header.Get("Location") != "https://example.com/docs/guide?lang=en" {
				t.Errorf("got %d Location %q, want 301 https://example.com/docs/guide?lang=en", got.status, got.header.Get("Location"))
			}
			if e := d.entry(t, "/moved/guide"); e.Rule != "redirect" || e.Attempts != 0 {
				t.Errorf("access entry rule %q attempts %d, want redirect and no attempt", e.Rule, e.Attempts)
			}
		})
	})
}

// Header rules and security_headers apply to the request the app sees
// and the answer the client sees, the app's own header winning over
// security_headers unless forced.
func TestRouteHeaderRules(t *testing.T) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := newEdgeApp(t)
		d := newDirect(t, proto, app.addr, func(a *config.App) {
			a.RequestHeaders = &config.HeaderOps{Set: map[string]string{"X-Client": "{client_ip} {scheme}"}, Remove: []string{"X-Secret", "X-Debug-*"}}
			a.ResponseHeaders = &config.HeaderOps{Set: map[string]string{"X-Served-By": "gatehouse"}, Remove: []string{"Server"}}
			a.SecurityHeaders = config.SecurityOn
			a.Routes = []config.Route{{Match: "/forced/", StripPrefix: true, SecurityHeaders: config.SecurityForce},
				{Match: "/denied/", Deny: []string{"127.0.0.0/8"}}, {Match: "/"}}
		})
		scheme := "http"
		if proto == "h2" {
			scheme = "https"
		}
		e := d.send(t, proto, edgeReq{path: "/echo", header: http.Header{"X-Secret": {"s"}, "X-Debug-Level": {"9"}, "X-Kept": {"k"}}}).echoed(t)
		want := map[string][]string{"X-Client": {"127.0.0.1 " + scheme}, "X-Kept": {"k"}}
		for k, v := range want {
			if !cmp.Equal(e.Headers[k], v) {
				t.Errorf("the app got %s: %q, want %q", k, e.Headers[k], v)
			}
		}
		for _, k := range []string{"X-Secret", "X-Debug-Level"} {
			if _, ok := e.Headers[k]; ok {
				t.Errorf("the app got %s, which request_headers removes", k)
			}
		}
		hsts := ""
		if scheme == "https" {
			hsts = "max-age=31536000"
		}
		for _, tt := range []struct {
			path, frame string
		}{{"/framed", "DENY"}, {"/forced/framed", "SAMEORIGIN"}} {
			got := d.send(t, proto, edgeReq{path: tt.path})
			h := got.header
			for k, v := range map[string]string{"X-Frame-Options": tt.frame, "X-Content-Type-Options": "nosniff",
				"Referrer-Policy": "strict-origin-when-cross-origin", "X-Served-By": "gatehouse", "Server": "",
				"Strict-Transport-Security": hsts} {
				if h.Get(k) != v {
					t.Errorf("%s: %s: %q, want %q", tt.path, k, h.Get(k), v)
				}
			}
		}
		// gatehouse's own answers carry them too.
		if got := d.send(t, proto, edgeReq{path: "/denied/"}); got.status != 403 || got.header.Get("X-Served-By") != "gatehouse" {
			t.Errorf("gatehouse's own %d answer lacks response_headers: %v", got.status, got.header)
		}
	})
}

// response_headers, security_headers and the cookie forward_auth's
// service refreshed go on the app's 101 to an upgrade too, the last head
// the client gets: a Server field removed from every answer is removed
// from it.
func TestRouteHeaderRulesApplyToAnUpgradesAnswer(t *testing.T) {
	authSvc := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "session=refreshed; Path=/")
	})}
	authLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go authSvc.Serve(authLn)
	t.Cleanup(func() { authSvc.Close() })
	addr := testutil.ServeRaw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nServer: app/1.0\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, br)
	})
	d := directWith(t, addr, protoOptions(t, "h1"), func(a *config.App) {
		a.ResponseHeaders = &config.HeaderOps{Set: map[string]string{"X-Served-By": "gatehouse"}, Remove: []string{"Server"}}
		a.SecurityHeaders = config.SecurityOn
		a.ForwardAuth = &config.ForwardAuth{URL: "http://" + authLn.Addr().String() + "/check", Timeout: config.Duration(5 * time.Second)}
	})
	c, err := net.Dial("tcp", d.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	head, err := readHeadOf(c, time.Now().Add(5*time.Second))
	if err != nil {
		t.Fatalf("the upgrade's answer: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(head)), nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("the upgrade's answer %.300q: %v", head, err)
	}
	for k, want := range map[string]string{"Server": "", "X-Served-By": "gatehouse", "X-Content-Type-Options": "nosniff",
		"Set-Cookie": "session=refreshed; Path=/"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("the 101's %s: %q, want %q", k, got, want)
		}
	}
}

// allow/deny decide on the client's address, from several loopback
// addresses, directly and through a trusted proxy.
func TestRouteAccessRules(t *testing.T) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := newEdgeApp(t)
		d := newDirect(t, proto, app.addr, func(a *config.App) {
			a.Deny = []string{"127.0.0.3"}
			a.Routes = []config.Route{{Match: "/admin/", Allow: []string{"127.0.0.4/32", "127.0.0.5"}, Deny: []string{}}, {Match: "/"}}
		})
		for _, tt := range []struct {
			from, path string
			status     int
		}{
			{"127.0.0.2", "/x", 200}, {"127.0.0.3", "/x", 403}, {"127.0.0.4", "/x", 200},
			{"127.0.0.2", "/admin/", 403}, {"127.0.0.3", "/admin/", 403}, {"127.0.0.4", "/admin/", 200}, {"127.0.0.5", "/admin/", 200},
		} {
			got := d.send(t, proto, edgeReq{from: tt.from, path: tt.path})
			if got.status != tt.status {
				t.Errorf("%s from %s: %d, want %d", tt.path, tt.from, got.status, tt.status)
			}
			if tt.status == 403 && got.header.Get("Gatehouse-Cause") != "access_denied" {
				t.Errorf("%s from %s: cause %q, want access_denied", tt.path, tt.from, got.header.Get("Gatehouse-Cause"))
			}
		}
	})
}

// A client over its rate gets 429 rate_limited with Retry-After; another
// address keeps being served.
func TestRouteRateLimit(t *testing.T) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := newEdgeApp(t)
		d := newDirect(t, proto, app.addr, func(a *config.App) {
			a.RateLimit = &config.RequestRateLimit{Rate: "1/m", Burst: 3}
		})
		for i := range 10 {
			got := d.send(t, proto, edgeReq{from: "127.0.0.2", path: fmt.Sprintf("/flood/%d", i)})
			switch {
			case i < 3 && got.status != 200:
				t.Errorf("request %d within the burst: %d", i, got.status)
			case i >= 3 && (got.status != 429 || got.header.Get("Gatehouse-Cause") != "rate_limited" || got.header.Get("Retry-After") == ""):
				t.Errorf("request %d past the burst: %d cause %q Retry-After %q, want 429 rate_limited with Retry-After",
					i, got.status, got.header.Get("Gatehouse-Cause"), got.header.Get("Retry-After"))
			}
		}
		for i := range 3 {
			if got := d.send(t, proto, edgeReq{from: "127.0.0.3", path: "/other"}); got.status != 200 {
				t.Errorf("another address's request %d during the flood: %d", i, got.status)
			}
		}
		if e := d.entry(t, "/flood/9"); e.Rule != "rate_limit" || e.Cause != "rate_limited" || e.Status != 429 {
			t.Errorf("access entry %+v, want rule rate_limit, cause rate_limited, 429", e)
		}
	})
}

// basic_auth: a missing or wrong password gets 401 with a challenge, the
// wrong one after the failure delay; the right one reaches the app and
// names the user in the log.
func TestRouteBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := newEdgeApp(t)
		d := newDirect(t, proto, app.addr, func(a *config.App) {
			a.BasicAuth = &config.BasicAuth{Users: map[string]string{"alice": string(hash)}}
			a.Routes = []config.Route{{Match: "/public/", BasicAuth: &config.BasicAuth{Off: true}}, {Match: "/"}}
		})
		auth := func(user, pass string) http.Header {
			r, _ := http.NewRequest("GET", "http://x/", nil)
			r.SetBasicAuth(user, pass)
			return r.Header
		}
		got := d.send(t, proto, edgeReq{path: "/none"})
		if got.status != 401 || !strings.HasPrefix(got.header.Get("Www-Authenticate"), "Basic realm=") || got.header.Get("Gatehouse-Cause") != "auth_required" {
			t.Errorf("no credentials: %d %v", got.status, got.header)
		}
		start := time.Now()
		got = d.send(t, proto, edgeReq{path: "/wrong", header: auth("alice", "guess")})
		if waited := time.Since(start); got.status != 401 || waited < 900*time.Millisecond {
			t.Errorf("wrong password: %d after %v, want 401 after the 1 s failure delay", got.status, waited)
		}
		got = d.send(t, proto, edgeReq{path: "/right", header: auth("alice", "s3cret")})
		if got.status != 200 {
			t.Fatalf("right password: %d %q", got.status, got.body)
		}
		if e := d.entry(t, "/right"); e.User != "alice" {
			t.Errorf("access entry user %q, want alice", e.User)
		}
		if got := d.send(t, proto, edgeReq{path: "/public/x"}); got.status != 200 {
			t.Errorf("a route with basic_auth off: %d", got.status)
		}
	})
}

// forward_auth: the auth service decides; its denial and its redirect are
// relayed, the headers it names are copied (a client's forgery
// removed), and when it is down the client gets 503 auth_unavailable.
func TestRouteForwardAuth(t *testing.T) {
	authSvc := http.NewServeMux()
	var seenBody, seenURI = make(chan string, 64), make(chan string, 64)
	authSvc.HandleFunc("/check", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seenBody <- string(b)
		seenURI <- r.Header.Get("X-Forwarded-Uri")
		switch r.Header.Get("X-Token") {
		case "good":
			w.Header().Set("X-Auth-User", "alice")
			w.WriteHeader(200)
		case "":
			w.Header().Set("Location", "/signin?rd="+r.Header.Get("X-Forwarded-Uri"))
			w.Header().Set("Set-Cookie", "csrf=1; Path=/")
			w.WriteHeader(302)
		default:
			w.WriteHeader(403)
			io.WriteString(w, "not you")
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: authSvc}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	down := testutil.FreePort(t)
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := newEdgeApp(t)
		d := newDirect(t, proto, app.addr, func(a *config.App) {
			a.ForwardAuth = &config.ForwardAuth{URL: "http://" + ln.Addr().String() + "/check", CopyHeaders: []string{"X-Auth-User"}, Timeout: config.Duration(2 * time.Second)}
			a.Routes = []config.Route{
				{Match: "/down/", ForwardAuth: &config.ForwardAuth{URL: fmt.Sprintf("http://127.0.0.1:%d/check", down), Timeout: config.Duration(2 * time.Second)}},
				{Match: "/"},
			}
		})
		got := d.send(t, proto, edgeReq{path: "/in", header: http.Header{"X-Token": {"good"}, "X-Auth-User": {"mallory"}}})
		if got.status != 200 {
			t.Fatalf("allowed: %d %q", got.status, got.body)
		}
		if e := got.echoed(t); !cmp.Equal(e.Headers["X-Auth-User"], []string{"alice"}) {
			t.Errorf("the app got X-Auth-User %q, want [alice] from the auth service", e.Headers["X-Auth-User"])
		}
		if e := d.entry(t, "/in"); e.User != "alice" {
			t.Errorf("access entry user %q, want alice", e.User)
		}
		got = d.send(t, proto, edgeReq{path: "/in", header: http.Header{"X-Token": {"bad"}}})
		if got.status != 403 || string(got.body) != "not you" {
			t.Errorf("denied: %d %q, want the auth service's 403 \"not you\"", got.status, got.body)
		}
		got = d.send(t, proto, edgeReq{path: "/in?x=1"})
		if got.status != 302 || got.header.Get("Location") != "/signin?rd=/in?x=1" || got.header.Get("Set-Cookie") != "csrf=1; Path=/" {
			t.Errorf("redirected: %d %v, want the auth service's 302 with its Location and cookie", got.status, got.header)
		}
		got = d.send(t, proto, edgeReq{method: "POST", path: "/in", header: http.Header{"X-Token": {"good"}}})
		if got.status != 200 {
			t.Errorf("POST allowed: %d", got.status)
		}
		for range 4 {
			if b := <-seenBody; b != "" {
				t.Errorf("the auth service was sent a body %q", b)
			}
			<-seenURI
		}
		got = d.send(t, proto, edgeReq{path: "/down/x"})
		if got.status != 503 || got.header.Get("Gatehouse-Cause") != "auth_unavailable" {
			t.Errorf("auth service down: %d cause %q, want 503 auth_unavailable", got.status, got.header.Get("Gatehouse-Cause"))
		}
	})
}

// A static route serves files from its directory, with ranges and
// conditionals, over every protocol; a file outside it is never served.
func TestRouteStaticFiles(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "app.js"), []byte("console.log('gatehouse')\n"), 0o644)
	os.WriteFile(filepath.Join(root, "index.html"), []byte("<h1>home</h1>"), 0o644)
	os.WriteFile(filepath.Join(filepath.Dir(root), "secret.txt"), []byte("outside"), 0o644)
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB: sent by sendfile over plain HTTP/1.1, in pieces
	os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644)
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := newEdgeApp(t)
		d := newDirect(t, proto, app.addr, func(a *config.App) {
			a.Routes = []config.Route{{Match: "/assets/", StripPrefix: true, Static: &config.Static{Root: root, Index: []string{"index.html"}, CacheControl: "public, max-age=60"}}, {Match: "/"}}
		})
		got := d.send(t, proto, edgeReq{path: "/assets/app.js"})
		if got.status != 200 || string(got.body) != "console.log('gatehouse')\n" || !strings.Contains(got.header.Get("Content-Type"), "javascript") ||
			got.header.Get("Cache-Control") != "public, max-age=60" || got.header.Get("Etag") == "" {
			t.Errorf("app.js: %d %v %q", got.status, got.header, got.body)
		}
		etag := got.header.Get("Etag")
		if got := d.send(t, proto, edgeReq{path: "/assets/app.js", header: http.Header{"If-None-Match": {etag}}}); got.status != 304 {
			t.Errorf("If-None-Match: %d, want 304", got.status)
		}
		if got := d.send(t, proto, edgeReq{path: "/assets/app.js", header: http.Header{"Range": {"bytes=0-6"}}}); got.status != 206 || string(got.body) != "console" {
			t.Errorf("Range: %d %q, want 206 \"console\"", got.status, got.body)
		}
		if got := d.send(t, proto, edgeReq{path: "/assets/big.bin"}); got.status != 200 || !bytes.Equal(got.body, big) {
			t.Errorf("big.bin: %d, %d bytes, want 200 and the file's %d", got.status, len(got.body), len(big))
		}
		if got := d.send(t, proto, edgeReq{path: "/assets/big.bin", header: http.Header{"Range": {"bytes=1048570-2097160"}}}); got.status != 206 || !bytes.Equal(got.body, big[1048570:2097161]) {
			t.Errorf("big.bin range: %d, %d bytes", got.status, len(got.body))
		}
		if got := d.send(t, proto, edgeReq{path: "/assets/"}); got.status != 200 || string(got.body) != "<h1>home</h1>" {
			t.Errorf("index: %d %q", got.status, got.body)
		}
		for _, p := range []string{"/assets/../secret.txt", "/assets/%2e%2e/secret.txt", "/assets/..%2fsecret.txt", "/assets/missing"} {
			if got := d.send(t, proto, edgeReq{path: p}); bytes.Contains(got.body, []byte("outside")) || got.status == 200 && !strings.Contains(string(got.body), `"path"`) {
				t.Errorf("%s: %d %q: a file outside the root, or a file where there is none", p, got.status, got.body)
			}
		}
		if e := d.entry(t, "/assets/app.js"); e.Rule != "static" || e.Attempts != 0 {
			t.Errorf("access entry rule %q attempts %d, want static and no attempt", e.Rule, e.Attempts)
		}
	})
}

// compress: each encoding reads back byte-exact, and an event stream
// through gzip arrives event by event.
func TestRouteCompression(t *testing.T) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := newEdgeApp(t)
		d := newDirect(t, proto, app.addr, func(a *config.App) { a.Compress = &config.Compress{} })
		for _, enc := range []string{"gzip", "br", "zstd"} {
			t.Run(enc, func(t *testing.T) {
				got := d.send(t, proto, edgeReq{path: "/page", header: http.Header{"Accept-Encoding": {enc}}})
				if got.header.Get("Content-Encoding") != enc || !strings.Contains(got.header.Get("Vary"), "Accept-Encoding") {
					t.Fatalf("Content-Encoding %q Vary %q, want %s and Accept-Encoding", got.header.Get("Content-Encoding"), got.header.Get("Vary"), enc)
				}
				if plain := decode(t, enc, got.body); plain != edgePage {
					t.Errorf("decoded %d bytes, not the page's %d", len(plain), len(edgePage))
				}
				if len(got.body) >= len(edgePage) {
					t.Errorf("compressed to %d bytes, the page is %d", len(got.body), len(edgePage))
				}
			})
		}
		if got := d.send(t, proto, edgeReq{path: "/page"}); got.header.Get("Content-Encoding") != "" || string(got.body) != edgePage {
			t.Errorf("identity: Content-Encoding %q, %d bytes", got.header.Get("Content-Encoding"), len(got.body))
		}
		t.Run("events", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", protoURL(proto, d.addr)+"/events", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := protoClient(t, proto).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("event stream Content-Encoding %q, want gzip", resp.Header.Get("Content-Encoding"))
			}
			app.events <- "one"
			zr, err := gzip.NewReader(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewReader(zr)
			for _, ev := range []string{"one", "two", "three"} {
				if ev != "one" {
					app.events <- ev
				}
				line, err := lines.ReadString('\n')
				if err != nil || line != "data: "+ev+"\n" {
					t.Fatalf("event %q arrived as %q, %v", ev, line, err)
				}
				lines.ReadString('\n')
			}
		})
	})
}

func decode(t *testing.T, enc string, b []byte) string {
	t.Helper()
	var r io.Reader
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(b))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", enc, err)
	}
	return string(out)
}

// A reload changes a route's rules at once, without a restart; a rule
// that cannot be built leaves the running ones as they were.
func TestRouteRulesChangeOnReload(t *testing.T) {
	app := newEdgeApp(t)
	var cfg *config.App
	gw, _ := oneMember(t, app.addr, func(a *config.App) { cfg = a }, gateway.Options{})
	addr := serve(t, "h1", gw)
	get := func() int {
		resp, err := http.Get("http://" + addr + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := get(); s != 200 {
		t.Fatalf("before the reload: %d", s)
	}
	next := *cfg
	next.Deny = []string{"127.0.0.0/8"}
	if err := gw.UpdateApp(&next); err != nil {
		t.Fatal(err)
	}
	if s := get(); s != 403 {
		t.Errorf("after a reload denying loopback: %d, want 403", s)
	}
	broken := next
	broken.Routes = []config.Route{{Match: "/", Static: &config.Static{Root: filepath.Join(t.TempDir(), "missing")}}}
	if err := gw.UpdateApp(&broken); err == nil {
		t.Error("a reload with a static root that does not exist was taken")
	}
	if s := get(); s != 403 {
		t.Errorf("after a refused reload: %d, want the rules before it (403)", s)
	}
}

// A reload of one app rebuilds its routes' rules, not another app's: a
// client over the other app's rate limit stays over it.
func TestReloadOfOneAppKeepsAnotherAppsRateLimit(t *testing.T) {
	app := newEdgeApp(t)
	cfg := config.Default()
	web, api := config.NewApp("web"), config.NewApp("api")
	web.Routes = config.PlainRoutes("/web/")
	api.Routes = config.PlainRoutes("/api/")
	api.RateLimit = &config.RequestRateLimit{Rate: "1/h", Burst: 1}
	cfg.Apps, cfg.Order = map[string]*config.App{"web": web, "api": api}, []string{"web", "api"}
	pools := map[string]*pool.Pool{}
	for _, name := range cfg.Order {
		p := pool.New(name, 100)
		m := pool.NewMember(name+"-1", app.addr)
		p.Add(m)
		m.SetState(pool.Ready)
		t.Cleanup(func() { p.Remove(m) })
		pools[name] = p
	}
	gw := gateway.New(cfg, pools, gateway.Options{})
	if err := gw.Err(); err != nil {
		t.Fatal(err)
	}
	d := &direct{addr: serve(t, "h1", gw)}
	for i, want := range []int{200, 429} {
		if got := d.send(t, "h1", edgeReq{path: "/api/x"}); got.status != want {
			t.Fatalf("api request %d: %d, want %d", i, got.status, want)
		}
	}
	next := *web
	next.ResponseHeaders = &config.HeaderOps{Set: map[string]string{"X-Reloaded": "1"}}
	if err := gw.UpdateApp(&next); err != nil {
		t.Fatal(err)
	}
	if got := d.send(t, "h1", edgeReq{path: "/web/x"}); got.header.Get("X-Reloaded") != "1" {
		t.Fatalf("web's reloaded rules do not apply: %d %v", got.status, got.header)
	}
	if got := d.send(t, "h1", edgeReq{path: "/api/x"}); got.status != 429 {
		t.Errorf("api request after reloading web: %d, want 429: its rate limit went on counting", got.status)
	}
}

// Raw bytes: answers a route writes itself (a file by sendfile, a range,
// a compressed chunked answer, a refused path) keep the connection's
// framing: pipelined requests each get their own answer, whole, on both
// HTTP/1.1 listeners; a HEAD gets the head alone.
func TestRouteAnswersKeepFramingOnRawConnections(t *testing.T) {
	root := t.TempDir()
	big := bytes.Repeat([]byte("gatehouse-sendfile"), 1<<16) // ~1.1 MiB
	os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644)
	os.WriteFile(filepath.Join(root, "app.js"), []byte("console.log(1)\n"), 0o644)
	eachWireInParallel(t, h1Wires, func(t *testing.T, w wire) {
		app := newEdgeApp(t)
		d := directWith(t, app.addr, w.h1Options(), func(a *config.App) {
			a.Compress = &config.Compress{}
			a.Routes = []config.Route{{Match: "/s/", StripPrefix: true, Static: &config.Static{Root: root}}, {Match: "/"}}
		})
		send := "GET /s/big.bin HTTP/1.1\r\nHost: x\r\n\r\n" +
			"GET /s/app.js HTTP/1.1\r\nHost: x\r\nRange: bytes=8-13\r\n\r\n" +
			"GET /page HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n" +
			"GET /s/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n" +
			"GET /s/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
		v := sendH1(w, d.addr, send)
		if len(v.answers) != 5 {
			t.Fatalf("%d answers to 5 pipelined requests: %+v", len(v.answers), v.answers)
		}
		a := v.answers
		if a[0].status != 200 || a[0].body != string(big) {
			t.Errorf("big.bin: %d, %d bytes, want the file's %d", a[0].status, len(a[0].body), len(big))
		}
		if a[1].status != 206 || a[1].body != "log(1)" {
			t.Errorf("range: %d %q", a[1].status, a[1].body)
		}
		if a[2].status != 200 || !a[2].chunked || a[2].header.Get("Content-Encoding") != "gzip" || decode(t, "gzip", []byte(a[2].body)) != edgePage {
			t.Errorf("compressed page: %d chunked %v encoding %q", a[2].status, a[2].chunked, a[2].header.Get("Content-Encoding"))
		}
		// Dot segments are removed before routing: the path leaves the
		// static route and is the app's, never a file's outside the root.
		if a[3].status != 200 || !strings.Contains(a[3].body, `"path":"/etc/passwd"`) {
			t.Errorf("escape: %d %q, want the app's answer for /etc/passwd", a[3].status, a[3].body)
		}
		if a[4].status != 200 || a[4].body != "console.log(1)\n" {
			t.Errorf("last: %d %q", a[4].status, a[4].body)
		}
		c, err := dialH1(w, d.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "HEAD /s/big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /s/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		head, err := http.ReadResponse(br, &http.Request{Method: "HEAD"})
		if err != nil || head.StatusCode != 200 || head.ContentLength != int64(len(big)) {
			t.Fatalf("HEAD: %v %+v", err, head)
		}
		next, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("the answer after HEAD: %v", err)
		}
		if body, _ := io.ReadAll(next.Body); string(body) != "console.log(1)\n" {
			t.Errorf("the answer after HEAD: %q (the HEAD sent a body?)", body)
		}
	})
}

// Behind a trusted proxy the rules decide on the client its
// X-Forwarded-For names; from any other peer, on the peer, whatever it
// forges. A flood from one client through the proxy leaves another
// client through the same proxy served.
func TestRouteRulesThroughATrustedProxy(t *testing.T) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := newEdgeApp(t)
		cfg := config.Default()
		cfg.TrustedProxies = []string{"127.0.0.2"}
		gw, _, _ := oneMemberUnder(t, cfg, app.addr, func(ac *config.App) {
			ac.Deny = []string{"127.0.0.3"}
			ac.RateLimit = &config.RequestRateLimit{Rate: "1/m", Burst: 2}
		}, gateway.Options{})
		d := &direct{addr: serve(t, proto, gw)}
		xff := func(ip string) http.Header { return http.Header{"X-Forwarded-For": {ip}} }
		for _, tt := range []struct {
			name, from, client string
			status             int
		}{
			{"a denied client through the proxy", "127.0.0.2", "127.0.0.3", 403},
			{"another client through the proxy", "127.0.0.2", "127.0.0.4", 200},
			{"an untrusted peer forging a denied client", "127.0.0.4", "127.0.0.3", 200},
			{"a denied peer forging another client", "127.0.0.3", "127.0.0.4", 403},
		} {
			if got := d.send(t, proto, edgeReq{from: tt.from, path: "/a", header: xff(tt.client)}); got.status != tt.status {
				t.Errorf("%s: %d, want %d", tt.name, got.status, tt.status)
			}
		}
		for i := range 4 {
			got := d.send(t, proto, edgeReq{from: "127.0.0.2", path: "/flood", header: xff("127.0.0.5")})
			if want := map[bool]int{true: 200, false: 429}[i < 2]; got.status != want {
				t.Errorf("flooding client's request %d: %d, want %d", i, got.status, want)
			}
		}
		if got := d.send(t, proto, edgeReq{from: "127.0.0.2", path: "/calm", header: xff("127.0.0.6")}); got.status != 200 {
			t.Errorf("another client through the same proxy during the flood: %d", got.status)
		}
	})
}

// Behind a trusted proxy that terminated TLS, a route's rules take the
// scheme it says, as the app does: the forward_auth service is asked
// about an https request (Authelia refuses an http one), {scheme} is
// https, and security_headers sends HSTS. A client that is no trusted
// proxy cannot say so.
func TestRouteRulesTakeTheSchemeATrustedProxySays(t *testing.T) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		// An auth service of each protocol's own: the protocols run at
		// once, and each reads what its own requests asked.
		authURL, asked := allowingAuthService(t, "X-Forwarded-Proto")
		app := newEdgeApp(t)
		cfg := config.Default()
		cfg.TrustedProxies = []string{"127.0.0.2"}
		gw, _, _ := oneMemberUnder(t, cfg, app.addr, func(ac *config.App) {
			ac.SecurityHeaders = config.SecurityOn
			ac.Routes = []config.Route{
				{Match: "/go/", Redirect: &config.Redirect{To: "{scheme}://example.com/"}},
				{Match: "/home/", Redirect: &config.Redirect{To: "{scheme}://{host}/"}},
				{Match: "/", ForwardAuth: &config.ForwardAuth{URL: authURL, Timeout: config.Duration(5 * time.Second)}},
			}
		}, gateway.Options{})
		d := &direct{addr: serve(t, proto, gw)}
		connScheme := "http"
		if proto == "h2" {
			connScheme = "https"
		}
		for _, tt := range []struct {
			name, from, want string
		}{
			{"through the trusted proxy", "127.0.0.2", "https"},
			{"from a client forging it", "127.0.0.4", connScheme},
		} {
			t.Run(tt.name, func(t *testing.T) {
				said := http.Header{"X-Forwarded-Proto": {"https"}}
				got := d.send(t, proto, edgeReq{from: tt.from, path: "/x", header: said})
				if got.status != 200 {
					t.Fatalf("status %d, body %q", got.status, got.body)
				}
				if s := <-asked; s != tt.want {
					t.Errorf("the auth service was asked about an X-Forwarded-Proto %q request, want %q", s, tt.want)
				}
				if hsts := got.header.Get("Strict-Transport-Security") != ""; hsts != (tt.want == "https") {
					t.Errorf("Strict-Transport-Security %q for a %s request", got.header.Get("Strict-Transport-Security"), tt.want)
				}
				got = d.send(t, proto, edgeReq{from: tt.from, path: "/go/", header: said})
				if loc, want := got.header.Get("Location"), tt.want+"://example.com/"; loc != want {
					t.Errorf("redirected to %q, want %q", loc, want)
				}
				// {host} is the request's Host whoever sent it: a cache
				// keys a redirect by Host, and one built from an
				// X-Forwarded-Host the proxy passed on from the client
				// would be served to everyone.
				said.Set("X-Forwarded-Host", "elsewhere.example")
				got = d.send(t, proto, edgeReq{from: tt.from, path: "/home/", header: said})
				if loc, want := got.header.Get("Location"), tt.want+"://"+d.addr+"/"; loc != want {
					t.Errorf("redirected home to %q, want %q", loc, want)
				}
			})
		}
	})
}

// allowingAuthService is a forward_auth service on loopback that allows
// every request and sends what each was asked with in field to asked.
func allowingAuthService(t *testing.T, field string) (url string, asked <-chan string) {
	t.Helper()
	ch := make(chan string, 16)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- r.Header.Get(field)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String() + "/check", ch
}

// Behind a trusted proxy, the forward_auth service is asked about the
// host the proxy says the browser asked for, as the app is told it
// (an auth service's cookie domain and redirect are made from it); a
// client that is no trusted proxy cannot say so, nor can a trusted one
// with a list of hosts.
func TestForwardAuthIsAskedAboutTheHostATrustedProxySays(t *testing.T) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		// An auth service of each protocol's own: the protocols run at
		// once, and each reads what its own requests asked.
		authURL, asked := allowingAuthService(t, "X-Forwarded-Host")
		app := newEdgeApp(t)
		cfg := config.Default()
		cfg.TrustedProxies = []string{"127.0.0.2"}
		gw, _, _ := oneMemberUnder(t, cfg, app.addr, func(ac *config.App) {
			ac.ForwardAuth = &config.ForwardAuth{URL: authURL, Timeout: config.Duration(5 * time.Second)}
		}, gateway.Options{})
		d := &direct{addr: serve(t, proto, gw)}
		for _, tt := range []struct {
			name, from string
			said       []string // X-Forwarded-Host
			want       string
		}{
			{"through the trusted proxy", "127.0.0.2", []string{"public.example:8443"}, "public.example:8443"},
			{"from a client forging it", "127.0.0.4", []string{"public.example:8443"}, "site.example"},
			{"a list through the trusted proxy", "127.0.0.2", []string{"public.example, evil.example"}, "site.example"},
			{"two lines through the trusted proxy", "127.0.0.2", []string{"public.example", "evil.example"}, "site.example"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				got := d.send(t, proto, edgeReq{from: tt.from, path: "/x", host: "site.example", header: http.Header{"X-Forwarded-Host": tt.said}})
				if got.status != 200 {
					t.Fatalf("status %d, body %q", got.status, got.body)
				}
				if h := <-asked; h != tt.want {
					t.Errorf("the auth service was asked with X-Forwarded-Host %q, want %q", h, tt.want)
				}
				if h := got.echoed(t).Headers["X-Forwarded-Host"]; !cmp.Equal(h, []string{tt.want}) {
					t.Errorf("the app was told X-Forwarded-Host %q, want [%q]: the auth service and the app disagree", h, tt.want)
				}
			})
		}
	})
}

// A host route's rules hold for every spelling of its host that names
// it: upper case, a port, the absolute domain's trailing dot
// ("admin.example.com."), which apps (Django, for one) take for the
// host without it, and a port with colons in it, the host before the
// first colon to nginx and Express (req.hostname); none falls through
// to the app's host-less route.
func TestRouteRulesOfAHostRouteHoldForEverySpellingOfTheHost(t *testing.T) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := newEdgeApp(t)
		d := newDirect(t, proto, app.addr, func(a *config.App) {
			a.Routes = []config.Route{{Match: "admin.example.com/", Deny: []string{"127.0.0.0/8"}}, {Match: "/"}}
		})
		for _, host := range []string{"admin.example.com", "ADMIN.example.com", "admin.example.com:8443", "admin.example.com.", "admin.example.com.:8443",
			"admin.example.com:8443:1", "admin.example.com.::"} {
			if got := d.send(t, proto, edgeReq{path: "/x", host: host}); got.status != http.StatusForbidden {
				t.Errorf("Host %q: %d, want 403 from the host route's deny", host, got.status)
			}
		}
		if got := d.send(t, proto, edgeReq{path: "/x", host: "www.example.com"}); got.status != http.StatusOK {
			t.Errorf("another host: %d, want 200 from the host-less route", got.status)
		}
	})
}

// A host route written with the absolute domain's trailing dot (or an
// IPv6 address in brackets) takes its host's requests: the request's
// host loses its dot and port before it is compared, and so does the
// route's. It used to keep its dot and match no request at all.
func TestRouteWithATrailingDotTakesItsHost(t *testing.T) {
	app := newEdgeApp(t)
	d := newDirect(t, "h1", app.addr, func(a *config.App) {
		a.Routes = []config.Route{{Match: "admin.example.com./", Deny: []string{"127.0.0.0/8"}}, {Match: "[::1]/", Deny: []string{"127.0.0.0/8"}}, {Match: "/"}}
	})
	for _, host := range []string{"admin.example.com", "admin.example.com.:8443", "[::1]:8080", "[::1]"} {
		if got := d.send(t, "h1", edgeReq{path: "/x", host: host}); got.status != http.StatusForbidden {
			t.Errorf("Host %q: %d, want 403 from the host route's deny", host, got.status)
		}
	}
}

// A route "/admin/" takes "/admin" too, its prefix without the slash
// (which apps serve as the same page: Express, Flask and Rails do), so
// that its rules hold for it rather than a shorter route's; a route
// that names "/admin" itself keeps it.
func TestRouteRulesHoldForTheirPrefixWithoutItsSlash(t *testing.T) {
	app := newEdgeApp(t)
	d := newDirect(t, "h1", app.addr, func(a *config.App) {
		a.Routes = []config.Route{
			{Match: "/admin/", Deny: []string{"127.0.0.0/8"}},
			{Match: "/api/", StripPrefix: true},
			{Match: "/docs/", Deny: []string{"127.0.0.0/8"}}, {Match: "/docs"},
			{Match: "/"},
		}
	})
	for _, tt := range []struct {
		path   string
		status int
		app    string // the path the app saw, when it answered
	}{
		{"/admin", 403, ""}, {"/admin?x=1", 403, ""}, {"/admin/", 403, ""},
		{"/administrator", 200, "/administrator"},
		{"/api", 200, "/"}, {"/api?x=1", 200, "/"},
		{"/docs", 200, "/docs"}, {"/docs/", 403, ""},
	} {
		got := d.send(t, "h1", edgeReq{path: tt.path})
		if got.status != tt.status {
			t.Errorf("%s: %d, want %d", tt.path, got.status, tt.status)
			continue
		}
		if tt.app != "" {
			if e := got.echoed(t); e.Path != tt.app {
				t.Errorf("%s: the app saw %q, want %q", tt.path, e.Path, tt.app)
			}
		}
	}
}

// A rate limit by client holds a flood of password guesses to the rate
// before any is checked: past the burst, 429, not a wrong password's
// 401 after its one-second wait.
func TestRouteRateLimitComesBeforeBasicAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	app := newEdgeApp(t)
	d := newDirect(t, "h1", app.addr, func(a *config.App) {
		a.BasicAuth = &config.BasicAuth{Users: map[string]string{"alice": string(hash)}}
		a.RateLimit = &config.RequestRateLimit{Rate: "1/m", Burst: 1}
	})
	r, _ := http.NewRequest("GET", "http://x/", nil)
	r.SetBasicAuth("alice", "guess")
	if got := d.send(t, "h1", edgeReq{path: "/guess/1", header: r.Header}); got.status != 401 {
		t.Fatalf("first guess: %d, want 401", got.status)
	}
	// Checked the other way round, the guess would wait its second and
	// get 401.
	if got := d.send(t, "h1", edgeReq{path: "/guess/2", header: r.Header}); got.status != 429 {
		t.Errorf("second guess past the burst: %d, want 429", got.status)
	}
}

// Raw frames: on HTTP/2 and h2c, streams answered by a route itself (a
// file, a range, a compressed page, a HEAD of a file) each end with the
// bytes their head declares, side by side on one connection.
func TestRouteAnswersKeepFramingOnRawStreams(t *testing.T) {
	root := t.TempDir()
	file := bytes.Repeat([]byte("gatehouse-h2-file"), 1500) // ~25 KB: within the initial window
	os.WriteFile(filepath.Join(root, "f.bin"), file, 0o644)
	for _, proto := range []string{"h2", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			app := newEdgeApp(t)
			d := newDirect(t, proto, app.addr, func(a *config.App) {
				a.Compress = &config.Compress{}
				a.Routes = []config.Route{{Match: "/s/", StripPrefix: true, Static: &config.Static{Root: root}}, {Match: "/"}}
			})
			h, err := dialH2(t, d.addr, proto == "h2")
			if err != nil {
				t.Fatal(err)
			}
			if err := h.start(); err != nil {
				t.Fatal(err)
			}
			h.get(1, "/s/f.bin")
			h.headers(3, true, h.req("GET", "/s/f.bin", "range", "bytes=10-19")...)
			h.headers(5, true, h.req("GET", "/page", "accept-encoding", "gzip")...)
			h.headers(7, true, h.req("HEAD", "/s/f.bin")...)
			v, ok := h.await(10*time.Second, func(v *h2View) bool {
				return settled(1)(v) && settled(3)(v) && settled(5)(v) && settled(7)(v)
			})
			if !ok {
				t.Fatalf("streams did not end: %s", v.String())
			}
			if st := v.Streams[1]; st.Status != 200 || !bytes.Equal(st.Body, file) {
				t.Errorf("file: %s, %d bytes", v.outcome(1), len(st.Body))
			}
			if st := v.Streams[3]; st.Status != 206 || string(st.Body) != string(file[10:20]) {
				t.Errorf("range: %s %q", v.outcome(3), st.Body)
			}
			if st := v.Streams[5]; st.Status != 200 || st.Header.Get("Content-Encoding") != "gzip" || decode(t, "gzip", st.Body) != edgePage {
				t.Errorf("compressed page: %s, encoding %q", v.outcome(5), st.Header.Get("Content-Encoding"))
			}
			if st := v.Streams[7]; st.Status != 200 || len(st.Body) != 0 || st.Header.Get("Content-Length") != strconv.Itoa(len(file)) {
				t.Errorf("HEAD: %s, %d body bytes, Content-Length %q", v.outcome(7), len(st.Body), st.Header.Get("Content-Length"))
			}
			if v.GoAway || v.Closed {
				t.Errorf("the connection ended: %s", v.String())
			}
		})
	}
}

// A path spelled with doubled slashes takes the route its slashes merged
// name, as nginx's location does (merge_slashes): apps that merge them
// (Rails, Spring) serve "//admin/" as "/admin/", so a shorter route's
// rules must not apply to it. strip_prefix takes the prefix off such a
// spelling too, and a rewrite holds for it.
func TestRouteRulesHoldForDoubledSlashes(t *testing.T) {
	d := newDirect(t, "h1", rawPathEchoApp(t), func(a *config.App) {
		a.Routes = []config.Route{
			{Match: "/admin/", Deny: []string{"127.0.0.0/8"}},
			{Match: "/api/", StripPrefix: true},
			{Match: "/old/", Rewrite: &config.Rewrite{From: "^/old/(.*)$", To: "/new/$1"}},
			{Match: "/"},
		}
	})
	expectRouted(t, d, []routedPath{
		{"//admin/", 403, ""}, {"/admin//x", 403, ""}, {"///admin///x", 403, ""}, {"//admin", 403, ""},
		{"//api/items", 200, "/items"}, {"//api//items", 200, "//items"}, {"//api", 200, "/"},
		{"//old/page", 200, "/new/page"}, {"/old//page", 200, "/new//page"},
		{"//old/page;jsessionid=1", 200, "/new/page;jsessionid=1"},
		{"//x", 200, "//x"},
	})
}

// A path whose segments carry parameters takes the route it names
// without them: servlet containers and Spring serve "/admin;x/secret" as
// "/admin/secret", so "/"'s rules must not apply to it. The app is sent
// the path as written, but for what strip_prefix takes off, parameters
// of the prefix's segments included, and for a rewrite, which holds for
// the path as the route read it and keeps the parameters of what it
// takes in (a session's ";jsessionid=").
func TestRouteRulesHoldForPathParameters(t *testing.T) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		d := newDirect(t, proto, rawPathEchoApp(t), func(a *config.App) {
			a.Routes = []config.Route{
				{Match: "/admin/", Deny: []string{"127.0.0.0/8"}},
				{Match: "/api/", StripPrefix: true},
				{Match: "/old/", Rewrite: &config.Rewrite{From: "^/old/(.*)$", To: "/new/$1"}},
				{Match: "/"},
			}
		})
		expectRoutedOver(t, d, proto, []routedPath{
			{"/admin;x/secret", 403, ""}, {"/admin;jsessionid=1", 403, ""}, {"/;x/admin/secret", 403, ""},
			{"/admin/;x", 403, ""}, {"//admin;/x", 403, ""},
			{"/api;v=1/items", 200, "/items"}, {"/api;v=1", 200, "/"}, {"/api/items;v=1", 200, "/items;v=1"},
			{"/adm;in/x", 200, "/adm;in/x"}, {"/x;y", 200, "/x;y"},
			// An escaped ";" as well: the route is chosen on the
			// decoded path.
			{"/admin%3Bx/secret", 403, ""}, {"/api%3Bv=1/items", 200, "/items"}, {"/%3Bx/api/items", 200, "/items"},
			{"/old;x/page", 200, "/new/page"}, {"/;x/old/page", 200, "/new/page"}, {"/old%3Bx/page", 200, "/new/page"},
			{"/old/page;jsessionid=1", 200, "/new/page;jsessionid=1"},
			{"/old;x/page;jsessionid=1", 200, "/new/page;jsessionid=1"},
		})
	})
}

// A parameter holding an encoded slash ("/;x%2Fy/admin/secret") is
// refused: a servlet container ends the parameter at the next '/' as
// sent, so serves /admin/secret, while an app that decodes first ends it
// at "%2F" and serves /y/admin/secret; the gateway cannot pick the route
// of both, and "/"'s rules must not hold for the first.
func TestPathParameterWithAnEncodedSlashIsRefused(t *testing.T) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		d := newDirect(t, proto, rawPathEchoApp(t), func(a *config.App) {
			a.Routes = []config.Route{
				{Match: "/admin/", Deny: []string{"127.0.0.0/8"}},
				{Match: "/api/", StripPrefix: true},
				{Match: "/"},
			}
		})
		expectRoutedOver(t, d, proto, []routedPath{
			{"/;x%2Fy/admin/secret", 400, ""}, {"/;%2F/admin/secret", 400, ""}, {"/x;a%2fb/admin/secret", 400, ""},
			{"/admin;x%2Fy/secret", 400, ""}, {"/api;v%2F1/items", 400, ""},
			// An encoded slash with no parameter before it in its
			// segment is read as before.
			{"/x%2Fy;a/b", 200, "/x%2Fy;a/b"}, {"/x;a/y%2Fz", 200, "/x;a/y%2Fz"},
		})
	})
}

// rawPathEchoApp is an app that answers with the path it was sent, as it
// came (a ServeMux would redirect a doubled slash away before it could
// be seen); its address.
func rawPathEchoApp(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(echoed{Path: r.URL.EscapedPath()})
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// routedPath is a path asked for, the status it must get, and the path
// the app must have seen when it answered ("": not checked).
type routedPath struct {
	path   string
	status int
	app    string
}

// expectRouted asks d for each path over HTTP/1.1 and checks its answer.
func expectRouted(t *testing.T, d *direct, paths []routedPath) {
	t.Helper()
	expectRoutedOver(t, d, "h1", paths)
}

// expectRoutedOver is expectRouted over proto.
func expectRoutedOver(t *testing.T, d *direct, proto string, paths []routedPath) {
	t.Helper()
	for _, tt := range paths {
		got := d.send(t, proto, edgeReq{path: tt.path})
		if got.status != tt.status {
			t.Errorf("%s: %d, want %d", tt.path, got.status, tt.status)
			continue
		}
		if tt.app != "" {
			if e := got.echoed(t); e.Path != tt.app {
				t.Errorf("%s: the app saw %q, want %q", tt.path, e.Path, tt.app)
			}
		}
	}
}

// A route whose match itself spells a doubled slash ("/a//b/") is the
// route of that path with its slashes merged, as the requests it was
// written for are: merging the request's slashes alone would leave it
// unreachable, and its rules to a shorter route's. strip_prefix takes
// its prefix off either spelling.
func TestRouteSpelledWithDoubledSlashes(t *testing.T) {
	d := newDirect(t, "h1", rawPathEchoApp(t), func(a *config.App) {
		a.Routes = []config.Route{
			{Match: "/a//b/", Deny: []string{"127.0.0.0/8"}},
			{Match: "/s//t/", StripPrefix: true},
			{Match: "/"},
		}
	})
	expectRouted(t, d, []routedPath{
		{"/a//b/x", 403, ""}, {"/a/b/x", 403, ""}, {"/a//b", 403, ""},
		{"/s//t/items", 200, "/items"}, {"/s/t/items", 200, "/items"}, {"/s///t//items", 200, "//items"},
	})
}

// An app's rate_limit is one bucket per client across the routes that
// take it (as an nginx limit_req zone is one across its locations): a
// client cannot multiply its rate by spreading requests over them. A
// route with its own rate_limit counts its own.
func TestRouteRateLimitOfTheAppIsSharedByItsRoutes(t *testing.T) {
	app := newEdgeApp(t)
	d := newDirect(t, "h1", app.addr, func(a *config.App) {
		a.RateLimit = &config.RequestRateLimit{Rate: "1/m", Burst: 2}
		a.Routes = []config.Route{
			{Match: "/a/"}, {Match: "/b/", StripPrefix: true},
			{Match: "/own/", RateLimit: &config.RequestRateLimit{Rate: "1/m", Burst: 1}},
			{Match: "/"},
		}
	})
	for _, tt := range []struct {
		path   string
		status int
	}{
		{"/a/1", 200}, {"/b/2", 200}, // the app's burst of 2, spent on two routes
		{"/3", 429}, {"/a/4", 429}, {"/b/5", 429},
		{"/own/6", 200}, {"/own/7", 429}, // the route's own bucket
	} {
		if got := d.send(t, "h1", edgeReq{from: "127.0.0.2", path: tt.path}); got.status != tt.status {
			t.Errorf("%s: %d, want %d", tt.path, got.status, tt.status)
		}
	}
}

// A rate_limit keys an IPv6 client by its /64, the prefix a line is
// given, so that a client that takes a new address of it for each
// request stays held to the rate; another /64 is another client. A
// route with ipv6_prefix: 128 keys each address.
func TestRouteRateLimitKeysAnIPv6ClientByItsPrefix(t *testing.T) {
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		app := newEdgeApp(t)
		cfg := config.Default()
		cfg.TrustedProxies = []string{"127.0.0.2"}
		d := &direct{}
		gw, _, _ := oneMemberUnder(t, cfg, app.addr, func(ac *config.App) {
			ac.RateLimit = &config.RequestRateLimit{Rate: "1/m", Burst: 2}
			ac.Routes = []config.Route{
				{Match: "/each/", RateLimit: &config.RequestRateLimit{Rate: "1/m", Burst: 1, IPv6Prefix: 128}},
				{Match: "/"},
			}
		}, gateway.Options{Observe: d.observe})
		d.addr = serve(t, proto, gw)
		for _, tt := range []struct {
			client, path string
			status       int
		}{
			{"2001:db8:1:2::1", "/1", 200},
			{"2001:db8:1:2::2", "/2", 200},
			{"2001:db8:1:2:a5b3:77ff:fe01:9c2d", "/3", 429}, // the /64's burst is spent
			{"2001:db8:1:3::1", "/4", 200},                  // another /64
			{"2001:db8:1:2::1", "/each/5", 200},
			{"2001:db8:1:2::2", "/each/6", 200}, // another address, another bucket
			{"2001:db8:1:2::1", "/each/7", 429},
		} {
			got := d.send(t, proto, edgeReq{from: "127.0.0.2", path: tt.path, header: http.Header{"X-Forwarded-For": {tt.client}}})
			if got.status != tt.status {
				t.Errorf("%s from %s: %d, want %d", tt.path, tt.client, got.status, tt.status)
			}
		}
		if e := d.entry(t, "/3"); !strings.Contains(e.Detail, "2001:db8:1:2::/64") {
			t.Errorf("the refusal's detail %q does not name the client's /64, 2001:db8:1:2::/64", e.Detail)
		}
	})
}

// A client connected over IPv6 is keyed by its /64 too: the peer's
// address, as the connection gives it, is read as an address.
func TestRouteRateLimitKeysAnIPv6PeerByItsPrefix(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	app := newEdgeApp(t)
	d := &direct{}
	gw, _, _ := oneMemberIn(t, app.addr, func(ac *config.App) {
		ac.RateLimit = &config.RequestRateLimit{Rate: "1/m", Burst: 1}
	}, gateway.Options{Observe: d.observe})
	f := front.New(gw, front.Options{})
	done := make(chan struct{})
	go func() { defer close(done); f.Serve(ln) }()
	t.Cleanup(func() { f.Close(); <-done })
	d.addr = ln.Addr().String()
	for _, tt := range []struct {
		path   string
		status int
	}{{"/1", 200}, {"/2", 429}} {
		if got := d.send(t, "h1", edgeReq{from: "::1", path: tt.path}); got.status != tt.status {
			t.Errorf("%s from ::1: %d, want %d", tt.path, got.status, tt.status)
		}
	}
	if e := d.entry(t, "/2"); !strings.Contains(e.Detail, "client ::/64 ") {
		t.Errorf("the refusal's detail %q does not name ::1's /64, ::/64", e.Detail)
	}
}
