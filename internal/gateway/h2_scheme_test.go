package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
)

// TestSchemeIsTheConnections: whether a request is secure is the
// connection's to say, never the request's: over TLS the app is told
// X-Forwarded-Proto https, the answer carries Strict-Transport-Security
// (front.Options.HSTS) and the affinity cookies are Secure (and have
// their SameSite=None twin), whatever the request names as its scheme;
// over plain TCP none of that, whatever it names.
//
// An HTTP/2 request names its scheme in :scheme, which a client may set
// to "http" over TLS: x/net's server then gives the handler no TLS state
// (http.Request.TLS is nil unless :scheme is https), which the front
// sets back from the connection. The HTTP/1.1 counterpart is an
// absolute-form target naming the other scheme.
func TestSchemeIsTheConnections(t *testing.T) {
	t.Parallel()
	const hsts = "max-age=31536000"
	cases := []struct {
		wire wire
		// scheme is what the request says: :scheme over HTTP/2, the
		// absolute-form target's scheme over HTTP/1.1 ("" origin-form).
		scheme string
	}{
		{wireH2TLS, "http"}, // the defect
		{wireH2TLS, "https"},
		{wireH2C, "https"},
		{wireH2C, "http"},
		{wireH1TLS, "http"},
		{wireH1TLS, ""},
		{wireH1, "https"},
		{wireH1, ""},
	}
	for _, c := range cases {
		name := c.wire.name + " says " + c.scheme
		if c.scheme == "" {
			name = c.wire.name + " origin-form"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			app := newNetApp(t, nil)
			opts := c.wire.frontOptions()
			opts.HSTS = hsts
			d := affinityDirect(t, app.addr, opts)

			var status int
			var header http.Header
			if c.wire.h2 {
				h, err := dialH2(t, d.addr, c.wire.tls)
				if err != nil {
					t.Fatal(err)
				}
				h.scheme = c.scheme
				if err := h.start(); err != nil {
					t.Fatal(err)
				}
				h.get(1, "/p")
				v, _ := h.await(h2Patience, settled(1))
				st := v.Streams[1]
				if st == nil || st.Status == 0 {
					t.Fatalf("GET /p with :scheme %s: %s; want an answer", c.scheme, v.outcome(1))
				}
				status, header = st.Status, st.Header
			} else {
				target := "/p"
				if c.scheme != "" {
					target = c.scheme + "://x/p"
				}
				r := sendH1(c.wire, d.addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				if r.err != nil || len(r.answers) != 1 {
					t.Fatalf("GET %s: %v, client got %.400q; want one answer", target, r.err, r.raw)
				}
				status, header = r.answers[0].status, r.answers[0].header
			}
			if status != 200 {
				t.Fatalf("answered %d %q; want the app's 200", status, header.Get("Gatehouse-Cause"))
			}

			secure := c.wire.tls
			wantProto, wantHSTS := "http", ""
			if secure {
				wantProto, wantHSTS = "https", hsts
			}
			seen := app.settle(d)
			if len(seen) != 1 {
				t.Fatalf("the app got %v, want one request", seen)
			}
			if got := seen[0].Header.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != wantProto {
				t.Errorf("the app got X-Forwarded-Proto %q; want %q (the connection is %s)", got, wantProto, c.wire.name)
			}
			if got := header.Get("Strict-Transport-Security"); got != wantHSTS {
				t.Errorf("the answer's Strict-Transport-Security is %q; want %q", got, wantHSTS)
			}
			checkAffinityCookies(t, header, secure)
		})
	}
}

// checkAffinityCookies wants the answer to a first request (no cookie
// sent) to set the affinity cookies of a connection that is secure or
// not: over TLS the Lax one Secure and its SameSite=None; Secure twin,
// over plain TCP the Lax one alone, not Secure.
func checkAffinityCookies(t *testing.T, h http.Header, secure bool) {
	t.Helper()
	var set []string
	for _, sc := range h.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "ARRAffinity") {
			set = append(set, sc)
		}
	}
	if !secure {
		if len(set) != 1 || !plainCookie.MatchString(set[0]) {
			t.Errorf("affinity Set-Cookie %q; want the one Lax cookie, not Secure, matching %v", set, plainCookie)
		}
		return
	}
	if len(set) != 2 {
		t.Errorf("affinity Set-Cookie %q; want two, both Secure (the Lax one and its SameSite=None twin)", set)
	}
	for _, sc := range set {
		if ck, err := http.ParseSetCookie(sc); err != nil || !ck.Secure {
			t.Errorf("affinity Set-Cookie %q is not Secure (%v)", sc, err)
		}
	}
}

// affinityDirect is a gateway for an app "web" with affinity on and one
// ready member at addr, served by a front with opts, its access entries
// kept (as directWith, with a data_dir for the affinity key).
func affinityDirect(t *testing.T, addr string, opts front.Options) *direct {
	t.Helper()
	d := &direct{}
	cfg := stickyConfig(t.TempDir(), nil)
	cfg.Apps["web"].RequestTimeout = config.Duration(5 * time.Second)
	p := pool.New("web", 100)
	d.m = pool.NewMember("web-1", addr)
	p.Add(d.m)
	d.m.SetState(pool.Ready)
	t.Cleanup(func() { p.Remove(d.m) })
	gw := gateway.New(cfg, map[string]*pool.Pool{"web": p}, gateway.Options{Observe: d.observe})
	d.serving = &servingCount{h: gw}
	_, d.addr = serveWith(t, d.serving, opts)
	d.url = "http://" + d.addr
	return d
}
