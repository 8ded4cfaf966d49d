package gateway_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
)

// These tests of affinity put the gateway in front of small in-process
// apps whose members the test sets to each state; the ones with real
// processes, recycles and kills are in affinity_fleet_test.go.

// sticky is a gateway with affinity on, served to clients speaking one
// protocol, in front of n apps that answer their name (web-1…) in
// X-Instance and set a cookie of their own.
type sticky struct {
	url string
	// secure: the clients come over TLS (h2), and are set both cookies,
	// Secure (see TestAffinityHTTPS).
	secure  bool
	dataDir string
	pool    *pool.Pool
	members []*pool.Member
	apps    []*httptest.Server
	gw      *gateway.Gateway
}

// newSticky serves the gateway to clients speaking proto (see
// protoOptions), or not at all with proto "".
func newSticky(t testing.TB, proto string, n int, adjust func(*config.Config)) *sticky {
	t.Helper()
	s := &sticky{dataDir: t.TempDir(), pool: pool.New("web", 100)}
	for i := range n {
		name := fmt.Sprintf("web-%d", i+1)
		app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Instance", name)
			w.Header().Add("Set-Cookie", "app="+name+"; Path=/")
			io.WriteString(w, name)
		}))
		t.Cleanup(app.Close)
		m := pool.NewMember(name, strings.TrimPrefix(app.URL, "http://"))
		s.pool.Add(m)
		m.SetState(pool.Ready)
		s.apps, s.members = append(s.apps, app), append(s.members, m)
	}
	t.Cleanup(func() {
		for _, m := range s.members {
			s.pool.Remove(m) // closes the gateway's upstream connections
		}
	})
	cfg := stickyConfig(s.dataDir, adjust)
	s.gw = gateway.New(cfg, map[string]*pool.Pool{"web": s.pool}, gateway.Options{})
	if proto != "" {
		s.url, s.secure = protoURL(proto, serve(t, proto, s.gw)), proto == "h2"
	}
	return s
}

func stickyConfig(dataDir string, adjust func(*config.Config)) *config.Config {
	cfg := config.Default()
	cfg.DataDir = dataDir
	app := config.NewApp("web")
	app.Routes = config.PlainRoutes("/")
	app.Affinity = true
	app.HoldTimeout = config.Duration(200 * time.Millisecond)
	app.RequestTimeout = config.Duration(5 * time.Second)
	cfg.Apps = map[string]*config.App{"web": app}
	cfg.Order = []string{"web"}
	if adjust != nil {
		adjust(cfg)
	}
	return cfg
}

// stickyAnswer is what a client saw of one request.
type stickyAnswer struct {
	status   int
	cause    string
	instance string
	// affinity are the Set-Cookie fields of the affinity cookies, app
	// those of the app's own, in order.
	affinity []string
	app      []string
}

// ask sends GET / with the given Cookie field ("" for none).
func ask(t *testing.T, c *http.Client, url, cookie string) stickyAnswer {
	t.Helper()
	req, err := http.NewRequest("GET", url+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET / with cookie %q: %v", cookie, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	a := stickyAnswer{status: resp.StatusCode, cause: resp.Header.Get("Gatehouse-Cause"), instance: resp.Header.Get("X-Instance")}
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "ARRAffinity") {
			a.affinity = append(a.affinity, sc)
		} else {
			a.app = append(a.app, sc)
		}
	}
	return a
}

// stickyClient is a client speaking proto.
func stickyClient(t *testing.T, proto string) *http.Client {
	c := protoClient(t, proto)
	c.Timeout = 10 * time.Second
	return c
}

// plainCookie is the Set-Cookie of the affinity cookie over HTTP,
// secureCookie over HTTPS.
var (
	plainCookie  = regexp.MustCompile(`^ARRAffinity=([0-9a-f]{32}); Path=/; HttpOnly; SameSite=Lax$`)
	secureCookie = regexp.MustCompile(`^ARRAffinity=([0-9a-f]{32}); Path=/; HttpOnly; Secure; SameSite=Lax$`)
)

// pinOf returns the cookie value of an answer, which must set exactly
// the Lax affinity cookie over HTTP, and over HTTPS the Secure one and
// its SameSite=None twin; and keep the app's own.
func (s *sticky) pinOf(t *testing.T, a stickyAnswer) string {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("status %d %s", a.status, a.cause)
	}
	re := plainCookie
	if s.secure {
		re = secureCookie
	}
	if want := map[bool]int{false: 1, true: 2}[s.secure]; len(a.affinity) != want || !re.MatchString(a.affinity[0]) {
		t.Fatalf("affinity Set-Cookie = %q, want %d, the first %v", a.affinity, want, re)
	}
	v := re.FindStringSubmatch(a.affinity[0])[1]
	if s.secure {
		if want := "ARRAffinitySameSite=" + v + "; Path=/; HttpOnly; SameSite=None; Secure"; a.affinity[1] != want {
			t.Fatalf("second affinity Set-Cookie %q, want %q", a.affinity[1], want)
		}
	}
	if diff := cmp.Diff([]string{"app=" + a.instance + "; Path=/"}, a.app); diff != "" {
		t.Errorf("the app's own Set-Cookie (-want +got):\n%s", diff)
	}
	return v
}

// cookie is the Cookie field of a client pinned by value v: the Lax
// cookie over HTTP, both over HTTPS.
func (s *sticky) cookie(v string) string {
	if s.secure {
		return "ARRAffinity=" + v + "; ARRAffinitySameSite=" + v
	}
	return "ARRAffinity=" + v
}

// member returns the member named id.
func (s *sticky) member(id string) *pool.Member {
	for _, m := range s.members {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// TestAffinityPinsClient: the first answer sets the cookie; with it every
// request goes to the same instance, even while the others are less
// loaded, and no cookie is set again. The app's own cookies pass.
func TestAffinityPinsClient(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		s := newSticky(t, proto, 3, nil)
		c := stickyClient(t, proto)
		first := ask(t, c, s.url, "")
		v := s.pinOf(t, first)
		// Load the pinned instance: a request without affinity would go
		// to one of the other two.
		pinned := s.member(first.instance)
		for range 5 {
			if !pinned.Take() {
				t.Fatal("the pinned member is not routable")
			}
		}
		defer func() {
			for range 5 {
				pinned.Release()
			}
		}()
		for i := range 20 {
			a := ask(t, c, s.url, "theme=dark; "+s.cookie(v)+"; lang=en")
			if a.status != 200 || a.instance != first.instance {
				t.Fatalf("request %d with the cookie: %d from %q, want 200 from %s", i, a.status, a.instance, first.instance)
			}
			if len(a.affinity) != 0 {
				t.Fatalf("request %d: affinity cookie set again: %q", i, a.affinity)
			}
			if len(a.app) != 1 {
				t.Fatalf("request %d: the app's own Set-Cookie = %q", i, a.app)
			}
		}
		if a := ask(t, c, s.url, ""); a.instance == first.instance {
			t.Errorf("a request without the cookie went to the loaded %s", a.instance)
		}
	})
}

// TestAffinityIgnoresForgedCookies: a cookie that names no member (made
// up, malformed, of another name; of another key: TestAffinityKeyIsKept)
// is ignored: the
// request is answered as any is, and the cookie is rewritten to the
// instance that answered.
func TestAffinityIgnoresForgedCookies(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		s := newSticky(t, proto, 2, nil)
		c := stickyClient(t, proto)
		for _, cookie := range []string{
			"ARRAffinity=zzz",
			"ARRAffinity=" + strings.Repeat("0", 32),
			"ARRAffinitySameSite=" + strings.Repeat("ab", 16),
			"ARRAffinity=; ARRAffinity2=x",
			"ARRAffinity",
			";;=;",
		} {
			a := ask(t, c, s.url, cookie)
			v := s.pinOf(t, a)
			if b := ask(t, c, s.url, s.cookie(v)); b.instance != a.instance || len(b.affinity) != 0 {
				t.Errorf("cookie %q: rewritten to %s, which then went to %s (Set-Cookie %q)", cookie, a.instance, b.instance, b.affinity)
			}
		}
	})
}

// TestAffinityMovesOffUnroutable: a client pinned to a member that may
// not take requests (draining, unhealthy, ejected, crashed and removed)
// goes to another at once, and its cookie follows; it then stays there,
// even when the first member is ready again.
func TestAffinityMovesOffUnroutable(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		leave func(p *pool.Pool, m *pool.Member)
		back  func(m *pool.Member)
	}{
		{"draining", func(_ *pool.Pool, m *pool.Member) { m.SetState(pool.Draining) }, nil},
		{"unhealthy", func(_ *pool.Pool, m *pool.Member) { m.SetState(pool.Unhealthy) }, func(m *pool.Member) { m.SetState(pool.Ready) }},
		{"ejected", func(_ *pool.Pool, m *pool.Member) { m.Eject() }, func(m *pool.Member) { m.ClearEjection() }},
		{"crashed", func(p *pool.Pool, m *pool.Member) { m.SetState(pool.Crashed); p.Remove(m) }, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
				s := newSticky(t, proto, 3, nil)
				c := stickyClient(t, proto)
				first := ask(t, c, s.url, "")
				v := s.pinOf(t, first)
				m := s.member(first.instance)
				tt.leave(s.pool, m)
				moved := ask(t, c, s.url, s.cookie(v))
				if moved.instance == first.instance {
					t.Fatalf("sent to %s, which is %s", first.instance, tt.name)
				}
				w := s.pinOf(t, moved)
				if w == v {
					t.Fatalf("cookie not rewritten: %s", w)
				}
				if tt.back != nil {
					tt.back(m)
				}
				for range 5 {
					if a := ask(t, c, s.url, s.cookie(w)); a.instance != moved.instance || len(a.affinity) != 0 {
						t.Fatalf("after the move: answered by %s with Set-Cookie %q, want %s and none", a.instance, a.affinity, moved.instance)
					}
				}
			})
		})
	}
}

// TestAffinityRetryRewritesCookie: the pinned instance refuses the
// connection; the request is retried on another, which answers, and the
// cookie is rewritten to it.
func TestAffinityRetryRewritesCookie(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		s := newSticky(t, proto, 2, nil)
		c := stickyClient(t, proto)
		first := ask(t, c, s.url, "")
		v := s.pinOf(t, first)
		for i, m := range s.members {
			if m.ID == first.instance {
				s.apps[i].Close() // its port now refuses connections
			}
		}
		a := ask(t, c, s.url, s.cookie(v))
		if a.instance == first.instance || a.status != 200 {
			t.Fatalf("answer %d from %q after %s went away", a.status, a.instance, first.instance)
		}
		if w := s.pinOf(t, a); w == v {
			t.Errorf("cookie not rewritten to %s", a.instance)
		}
	})
}

// TestAffinityNoCookieOnGatehouseErrors: when gatehouse answers itself (no
// instance ready), no affinity cookie is set: no instance answered.
func TestAffinityNoCookieOnGatehouseErrors(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		s := newSticky(t, proto, 1, nil)
		c := stickyClient(t, proto)
		v := s.pinOf(t, ask(t, c, s.url, ""))
		s.members[0].SetState(pool.Unhealthy)
		for _, cookie := range []string{"", s.cookie(v), "ARRAffinity=zzz"} {
			a := ask(t, c, s.url, cookie)
			if a.status != 503 || a.cause != "no_ready_instance" {
				t.Fatalf("cookie %q: %d %q, want 503 no_ready_instance", cookie, a.status, a.cause)
			}
			if len(a.affinity) != 0 {
				t.Errorf("cookie %q: gatehouse's 503 sets %q", cookie, a.affinity)
			}
		}
	})
}

// TestAffinityOff: without affinity the gateway sets no cookie and ignores
// one sent.
func TestAffinityOff(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		on := newSticky(t, proto, 2, nil)
		c := stickyClient(t, proto)
		v := on.pinOf(t, ask(t, c, on.url, ""))
		off := gateway.New(stickyConfig(on.dataDir, func(cfg *config.Config) { cfg.Apps["web"].Affinity = false }),
			map[string]*pool.Pool{"web": on.pool}, gateway.Options{})
		url := protoURL(proto, serve(t, proto, off))
		seen := map[string]bool{}
		for range 6 {
			a := ask(t, c, url, on.cookie(v))
			if len(a.affinity) != 0 {
				t.Fatalf("affinity off: Set-Cookie %q", a.affinity)
			}
			seen[a.instance] = true
		}
		if len(seen) != 2 {
			t.Errorf("affinity off: a client with a cookie was answered by %v only", seen)
		}
	})
}

// TestAffinityCookieName: affinity_cookie names both cookies.
func TestAffinityCookieName(t *testing.T) {
	t.Parallel()
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		s := newSticky(t, proto, 2, func(cfg *config.Config) { cfg.Apps["web"].AffinityCookie = "sticky" })
		c := stickyClient(t, proto)
		first := ask(t, c, s.url, "")
		re := regexp.MustCompile(`^sticky=([0-9a-f]{32}); Path=/; HttpOnly; SameSite=Lax$`)
		want := 2 // the app's and the Lax one
		if s.secure {
			re = regexp.MustCompile(`^sticky=([0-9a-f]{32}); Path=/; HttpOnly; Secure; SameSite=Lax$`)
			want = 3 // and the SameSite=None one
		}
		if len(first.app) != want || !re.MatchString(first.app[1]) {
			t.Fatalf("Set-Cookie %q, want the app's and %d matching %v", first.app, want-1, re)
		}
		v := re.FindStringSubmatch(first.app[1])[1]
		cookies := []string{"sticky=" + v, "stickySameSite=" + v, `sticky="` + v + `"`}
		if s.secure {
			if sameSite := "stickySameSite=" + v + "; Path=/; HttpOnly; SameSite=None; Secure"; first.app[2] != sameSite {
				t.Errorf("second cookie %q, want %q", first.app[2], sameSite)
			}
			// Over HTTPS a client that has the Lax one has the other.
			cookies = []string{"sticky=" + v + "; stickySameSite=" + v, "stickySameSite=" + v, `sticky="` + v + `"; stickySameSite="` + v + `"`}
		}
		for _, cookie := range cookies {
			if a := ask(t, c, s.url, "ARRAffinity=x; "+cookie); a.instance != first.instance || len(a.app) != 1 {
				t.Errorf("cookie %q: answered by %s with Set-Cookie %q, want %s and only the app's", cookie, a.instance, a.app, first.instance)
			}
		}
	})
}

// TestAffinityHTTPS: over TLS both cookies are set, the first Secure, the
// second SameSite=None; Secure (App Service's ARRAffinitySameSite), so
// that requests from other sites keep their instance too, over HTTP/1.1
// and HTTP/2.
func TestAffinityHTTPS(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{"h1 tls", "h2"} {
		t.Run(proto, func(t *testing.T) {
			s := newSticky(t, "", 3, nil)
			c, url := tlsServe(t, s.gw, proto)

			first := ask(t, c, url, "")
			if first.status != 200 || len(first.affinity) != 2 {
				t.Fatalf("%d, affinity Set-Cookie %q: want both", first.status, first.affinity)
			}
			re := regexp.MustCompile(`^ARRAffinity=([0-9a-f]{32}); Path=/; HttpOnly; Secure; SameSite=Lax$`)
			if !re.MatchString(first.affinity[0]) {
				t.Fatalf("first cookie %q, want %v", first.affinity[0], re)
			}
			v := re.FindStringSubmatch(first.affinity[0])[1]
			if want := "ARRAffinitySameSite=" + v + "; Path=/; HttpOnly; SameSite=None; Secure"; first.affinity[1] != want {
				t.Errorf("second cookie %q, want %q", first.affinity[1], want)
			}
			for _, sc := range first.affinity {
				ck, err := http.ParseSetCookie(sc)
				if err != nil || !ck.Secure || !ck.HttpOnly || ck.Path != "/" {
					t.Errorf("%q parses as %+v, %v: want Secure, HttpOnly, Path=/", sc, ck, err)
				}
			}
			if diff := cmp.Diff([]string{"app=" + first.instance + "; Path=/"}, first.app); diff != "" {
				t.Errorf("the app's own Set-Cookie (-want +got):\n%s", diff)
			}

			for _, tt := range []struct {
				name, cookie string
				set          bool
			}{
				{"both", "ARRAffinity=" + v + "; ARRAffinitySameSite=" + v, false},
				{"from another site: only the SameSite=None one", "ARRAffinitySameSite=" + v, false},
				{"only the Lax one (set over HTTP): both again", "ARRAffinity=" + v, true},
				{"a stale SameSite one: both again", "ARRAffinity=" + v + "; ARRAffinitySameSite=" + strings.Repeat("0", 32), true},
			} {
				a := ask(t, c, url, tt.cookie)
				if a.instance != first.instance {
					t.Errorf("%s: answered by %s, want %s", tt.name, a.instance, first.instance)
				}
				if got := len(a.affinity) == 2 && a.affinity[0] == first.affinity[0] && a.affinity[1] == first.affinity[1]; got != tt.set || !tt.set && len(a.affinity) != 0 {
					t.Errorf("%s: Set-Cookie %q, want both again: %v", tt.name, a.affinity, tt.set)
				}
			}
		})
	}
}

// TestAffinityKeyIsKept: the key is made once in data_dir (0600) and read
// by the next gatehouse, which then keeps the clients where they were; a
// gatehouse with another key does not recognise its cookies. A key file
// that is not a key is reported and left alone.
func TestAffinityKeyIsKept(t *testing.T) {
	t.Parallel()
	s := newSticky(t, "h1", 2, nil)
	c := stickyClient(t, "h1")
	first := ask(t, c, s.url, "")
	v := s.pinOf(t, first)

	path := filepath.Join(s.dataDir, "affinity.key")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(b) {
		t.Errorf("%s holds %q, want 64 hex digits", path, b)
	}

	again := gateway.New(stickyConfig(s.dataDir, nil), map[string]*pool.Pool{"web": s.pool}, gateway.Options{})
	url := protoURL("h1", serve(t, "h1", again))
	for range 4 {
		if a := ask(t, c, url, "ARRAffinity="+v); a.instance != first.instance || len(a.affinity) != 0 {
			t.Fatalf("after a restart: answered by %s with Set-Cookie %q, want %s and none", a.instance, a.affinity, first.instance)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
		t.Errorf("the key changed: %q → %q", b, after)
	}

	bad := t.TempDir()
	badKey := []byte("not a key\n")
	if err := os.WriteFile(filepath.Join(bad, "affinity.key"), badKey, 0o600); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	other := gateway.New(stickyConfig(bad, nil), map[string]*pool.Pool{"web": s.pool},
		gateway.Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	url = protoURL("h1", serve(t, "h1", other))
	a := ask(t, c, url, "ARRAffinity="+v)
	if w := s.pinOf(t, a); w == v {
		t.Errorf("another key recognised the cookie %s", v)
	}
	if !strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), "want at least 32 hex digits") {
		t.Errorf("log for a malformed key: %q", logged.String())
	}
	if after, _ := os.ReadFile(filepath.Join(bad, "affinity.key")); !bytes.Equal(after, badKey) {
		t.Errorf("the malformed key file was replaced: %q", after)
	}
}

// BenchmarkAffinity is BenchmarkProxy's hot path (HTTP/1.1) for a
// client that sends its affinity cookie among others, with affinity off
// and on: what reading the cookie and sending the request to its
// instance cost.
func BenchmarkAffinity(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "off", true: "on"}[on], func(b *testing.B) {
			s := newSticky(b, "h1", 3, func(cfg *config.Config) { cfg.Apps["web"].Affinity = on })
			c := benchClient(b, "h1")
			resp, err := c.Get(s.url + "/")
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			v := "0123456789abcdef0123456789abcdef"
			if on {
				v = plainCookie.FindStringSubmatch(resp.Header.Values("Set-Cookie")[1])[1]
			}
			req, _ := http.NewRequest("GET", s.url+"/", nil)
			req.Header.Set("Cookie", "_ga=GA1.2.3; theme=dark; ARRAffinity="+v)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := c.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if on && len(resp.Header.Values("Set-Cookie")) != 1 {
					b.Fatalf("Set-Cookie %q", resp.Header.Values("Set-Cookie"))
				}
			}
		})
	}
}

// tlsServe serves gw over TLS on loopback, to a client speaking proto:
// HTTP/1.1 ("h1 tls") or HTTP/2 ("h2"). It returns a client that trusts
// the certificate and the base URL.
func tlsServe(t *testing.T, gw *gateway.Gateway, proto string) (*http.Client, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.StartTLS()
	t.Cleanup(srv.Close)
	c := srv.Client()
	t.Cleanup(c.CloseIdleConnections)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := front.New(gw, front.Options{TLS: &tls.Config{Certificates: srv.TLS.Certificates, NextProtos: []string{"h2", "http/1.1"}}})
	done := make(chan struct{})
	go func() { defer close(done); f.Serve(ln) }()
	t.Cleanup(func() { f.Close(); <-done })
	tr := c.Transport.(*http.Transport).Clone()
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(proto == "h1 tls")
	tr.Protocols.SetHTTP2(proto == "h2")
	c = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	return c, "https://" + ln.Addr().String()
}
