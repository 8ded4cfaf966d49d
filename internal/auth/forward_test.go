package auth_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// question is what the auth service received.
type question struct {
	method, uri string
	header      http.Header
	body        string
}

// authService starts an auth service on loopback that records each
// question on the returned channel and answers with answer.
func authService(t *testing.T, answer http.HandlerFunc) (*httptest.Server, <-chan question) {
	t.Helper()
	asked := make(chan question, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		select {
		case asked <- question{method: r.Method, uri: r.RequestURI, header: r.Header.Clone(), body: string(body)}:
		default:
		}
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, asked
}

func newForward(t *testing.T, o auth.ForwardOptions) *auth.Forward {
	t.Helper()
	f, err := auth.NewForward(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// clientRequest is a request as the gateway received it from a client.
func clientRequest(method, target, body string, header map[string]string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

// A 2xx lets the request through with the CopyHeaders the service set,
// and none of the client's own: a header the service left out is removed.
func TestForwardAllowsWithTheServicesHeadersOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		status        int
		answer        map[string][]string
		wantUser      string
		wantCopy      http.Header
		wantSetCookie []string
		wantApp       http.Header // the app's request header after Apply
	}{
		{
			name:   "user and groups set",
			status: http.StatusOK,
			answer: map[string][]string{
				"X-Auth-User": {"alice"}, "Remote-Groups": {"admins", "dev"},
				"Set-Cookie": {"_oauth2_proxy=refreshed; Path=/; HttpOnly"}, "X-Other": {"not copied"},
			},
			wantUser:      "alice",
			wantCopy:      http.Header{"X-Auth-User": {"alice"}, "Remote-Groups": {"admins", "dev"}, "Remote-Email": nil},
			wantSetCookie: []string{"_oauth2_proxy=refreshed; Path=/; HttpOnly"},
			wantApp:       http.Header{"X-Auth-User": {"alice"}, "Remote-Groups": {"admins", "dev"}, "Accept": {"text/html"}},
		},
		{
			name:     "nothing set, 202",
			status:   http.StatusAccepted,
			wantCopy: http.Header{"X-Auth-User": nil, "Remote-Groups": nil, "Remote-Email": nil},
			wantApp:  http.Header{"Accept": {"text/html"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := authService(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.answer {
					w.Header()[k] = v
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, "ok")
			})
			f := newForward(t, auth.ForwardOptions{URL: srv.URL + "/verify", CopyHeaders: []string{"x-auth-user", "Remote-Groups", "Remote-Email"}})
			r := clientRequest("GET", "https://app.example/", "", map[string]string{
				"X-Auth-User": "root", "Remote-Email": "root@forged.example", "Accept": "text/html",
			})
			d, err := f.Check(context.Background(), r, auth.Origin{ClientIP: "192.0.2.7", Scheme: "https"})
			if err != nil {
				t.Fatal(err)
			}
			if !d.Allowed || d.User != tc.wantUser {
				t.Errorf("Allowed %v, User %q; want true, %q", d.Allowed, d.User, tc.wantUser)
			}
			if diff := cmp.Diff(tc.wantCopy, d.Copy); diff != "" {
				t.Errorf("Copy (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantSetCookie, d.SetCookie, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("SetCookie (-want +got):\n%s", diff)
			}
			app := r.Header.Clone()
			d.Apply(app)
			if diff := cmp.Diff(tc.wantApp, app); diff != "" {
				t.Errorf("the app's request header (-want +got):\n%s", diff)
			}
		})
	}
}

// Any answer but a 2xx is relayed to the client as the service gave it, a
// sign-in redirect among them, which is not followed.
func TestForwardRelaysADenialAsItIs(t *testing.T) {
	t.Parallel()
	var followed atomic.Int32
	signIn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Add(1) }))
	t.Cleanup(signIn.Close)
	long := strings.Repeat("x", 100<<10)
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		wantHeader http.Header
		wantBody   string
	}{
		{
			name: "401", status: http.StatusUnauthorized,
			header:     http.Header{"Www-Authenticate": {`Bearer realm="sso"`}, "Content-Type": {"application/json"}},
			body:       `{"error":"sign in"}`,
			wantHeader: http.Header{"Www-Authenticate": {`Bearer realm="sso"`}, "Content-Type": {"application/json"}},
			wantBody:   `{"error":"sign in"}`,
		},
		{
			name: "403", status: http.StatusForbidden,
			header:     http.Header{"Content-Type": {"text/plain"}},
			body:       "not in the group",
			wantHeader: http.Header{"Content-Type": {"text/plain"}},
			wantBody:   "not in the group",
		},
		{
			name: "302 to sign in", status: http.StatusFound,
			header: http.Header{"Location": {signIn.URL + "/oauth2/start?rd=%2F"}, "Set-Cookie": {"_csrf=abc; Path=/; HttpOnly", "_state=def; Path=/"}},
			wantHeader: http.Header{
				"Location":   {signIn.URL + "/oauth2/start?rd=%2F"},
				"Set-Cookie": {"_csrf=abc; Path=/; HttpOnly", "_state=def; Path=/"},
			},
		},
		{
			name: "500", status: http.StatusInternalServerError,
			header:     http.Header{"Content-Type": {"text/plain"}, "Connection": {"X-Hop"}, "X-Hop": {"1"}},
			body:       "database down",
			wantHeader: http.Header{"Content-Type": {"text/plain"}},
			wantBody:   "database down",
		},
		{
			name: "long body cut at 64 KiB", status: http.StatusUnauthorized,
			header:     http.Header{"Content-Type": {"text/html"}},
			body:       long,
			wantHeader: http.Header{"Content-Type": {"text/html"}},
			wantBody:   long[:64<<10],
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := authService(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			f := newForward(t, auth.ForwardOptions{URL: srv.URL})
			d, err := f.Check(context.Background(), clientRequest("GET", "https://app.example/", "", nil), auth.Origin{ClientIP: "192.0.2.7", Scheme: "https"})
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed || d.Status != tc.status {
				t.Errorf("Allowed %v, Status %d; want false, %d", d.Allowed, d.Status, tc.status)
			}
			// Date is the service's, relayed too; its value is no concern here.
			if diff := cmp.Diff(tc.wantHeader, d.Header, cmpopts.IgnoreMapEntries(func(k string, _ []string) bool { return k == "Date" })); diff != "" {
				t.Errorf("Header (-want +got):\n%s", diff)
			}
			if string(d.Body) != tc.wantBody {
				t.Errorf("Body: %d bytes %.40q…, want %d bytes %.40q…", len(d.Body), d.Body, len(tc.wantBody), tc.wantBody)
			}
		})
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the sign-in redirect was followed %d times", n)
	}
}

// The auth service is asked with a GET that has no body, the client's
// end-to-end headers, and the forwarding headers from what the caller
// knows, whatever the client claimed.
func TestForwardAsksWithoutTheBodyAndWithTheForwardedSet(t *testing.T) {
	t.Parallel()
	client := map[string]string{
		"Cookie": "_oauth2_proxy=session", "Authorization": "Bearer t0ken", "Content-Type": "text/plain",
		"X-Forwarded-For": "198.51.100.66", "X-Forwarded-Host": "forged.example", "Forwarded": "for=198.51.100.66",
		"X-Real-Ip": "198.51.100.66", "X-Forwarded-Port": "8443", "Connection": "X-Hop", "X-Hop": "1", "Accept-Encoding": "gzip",
		// Authelia's /api/verify and /api/authz/auth-request read the
		// request from these before X-Forwarded-*: a client's own would
		// have the service judge another URL than the one asked for.
		"X-Original-Url": "https://app.example/public/", "X-Original-Method": "GET", "X-Original-Uri": "/public/",
		"X-Rewrite-Url": "/public/", "True-Client-Ip": "198.51.100.66", "X-Client-Ip": "198.51.100.66",
		"Cf-Connecting-Ip": "198.51.100.66",
	}
	forwarded := http.Header{
		"X-Forwarded-Method": {"POST"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example"},
		"X-Forwarded-Uri": {"/app/path?q=1&r=%2F"}, "X-Forwarded-For": {"192.0.2.7"}, "X-Real-Ip": {"192.0.2.7"},
	}
	with := func(h http.Header, more http.Header) http.Header {
		out := h.Clone()
		for k, v := range more {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name    string
		request []string
		host    string // Origin.Host
		want    http.Header
	}{
		{
			name: "default headers",
			want: with(forwarded, http.Header{"Cookie": {"_oauth2_proxy=session"}, "Authorization": {"Bearer t0ken"}, "Content-Type": {"text/plain"}}),
		},
		{
			name:    "request_headers named",
			request: []string{"cookie", "X-Absent"},
			want:    with(forwarded, http.Header{"Cookie": {"_oauth2_proxy=session"}}),
		},
		{
			name:    "the host a trusted proxy said",
			request: []string{"cookie"},
			host:    "public.example:8443",
			want:    with(forwarded, http.Header{"Cookie": {"_oauth2_proxy=session"}, "X-Forwarded-Host": {"public.example:8443"}}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, asked := authService(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
			f := newForward(t, auth.ForwardOptions{URL: srv.URL + "/verify?app=web", RequestHeaders: tc.request})
			r := clientRequest("POST", "https://app.example/app/path?q=1&r=%2F", "the client's secret body", client)
			if _, err := f.Check(context.Background(), r, auth.Origin{ClientIP: "192.0.2.7", Scheme: "https", Host: tc.host}); err != nil {
				t.Fatal(err)
			}
			q := <-asked
			if q.method != "GET" || q.uri != "/verify?app=web" || q.body != "" {
				t.Errorf("asked %s %s with body %q; want GET /verify?app=web without a body", q.method, q.uri, q.body)
			}
			// The transport's own, as the client sent none.
			q.header.Del("User-Agent")
			if diff := cmp.Diff(tc.want, q.header); diff != "" {
				t.Errorf("the question's header (-want +got):\n%s", diff)
			}
		})
	}
}

// Questions reuse one kept-alive connection to the service, and Close
// lets it go.
func TestForwardKeepsItsConnectionAlive(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	f := newForward(t, auth.ForwardOptions{URL: srv.URL})
	for range 3 {
		if d, err := f.Check(context.Background(), clientRequest("GET", "http://app.example/", "", nil), auth.Origin{ClientIP: "192.0.2.7", Scheme: "http"}); err != nil || !d.Allowed {
			t.Fatalf("Check = %+v, %v; want allowed", d, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 questions opened %d connections, want 1", n)
	}
}

// No answer is an *UnavailableError, for the caller to answer 503: a
// refused connection at once, a slow service after Timeout. A client that
// leaves first gets its context's error instead.
func TestForwardWithoutAnAnswerIsUnavailable(t *testing.T) {
	t.Parallel()
	r := clientRequest("GET", "https://app.example/", "", nil)

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		url := "http://user:pass@" + testutil.ClosedAddr(t) + "/verify"
		f := newForward(t, auth.ForwardOptions{URL: url})
		_, err := f.Check(context.Background(), r, auth.Origin{ClientIP: "192.0.2.7", Scheme: "https"})
		var ue *auth.UnavailableError
		if !errors.As(err, &ue) {
			t.Fatalf("Check: %v; want an *auth.UnavailableError", err)
		}
		if strings.Contains(ue.URL, "pass") || strings.Contains(err.Error(), "pass") {
			t.Errorf("Check: %v; names the URL's password", err)
		}
	})

	slow := func(t *testing.T) (url string, asked <-chan question) {
		srv, asked := authService(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		return srv.URL, asked
	}

	t.Run("slower than Timeout", func(t *testing.T) {
		t.Parallel()
		url, _ := slow(t)
		f := newForward(t, auth.ForwardOptions{URL: url, Timeout: 100 * time.Millisecond})
		start := time.Now()
		_, err := f.Check(context.Background(), r, auth.Origin{ClientIP: "192.0.2.7", Scheme: "https"})
		var ue *auth.UnavailableError
		if !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Check: %v; want an *auth.UnavailableError of context.DeadlineExceeded", err)
		}
		// Generous: the point is that it does not wait for the service.
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Check took %v with a 100ms Timeout", d)
		}
	})

	t.Run("client gone first", func(t *testing.T) {
		t.Parallel()
		url, asked := slow(t)
		f := newForward(t, auth.ForwardOptions{URL: url, Timeout: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := f.Check(ctx, r, auth.Origin{ClientIP: "192.0.2.7", Scheme: "https"})
			errc <- err
		}()
		<-asked
		cancel()
		err := <-errc
		var ue *auth.UnavailableError
		if errors.As(err, &ue) || !errors.Is(err, context.Canceled) {
			t.Errorf("Check: %v; want context.Canceled, not an *auth.UnavailableError", err)
		}
	})
}

// NewForward refuses what cannot be asked.
func TestNewForwardRefusesABadService(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		o    auth.ForwardOptions
	}{
		{"no scheme", auth.ForwardOptions{URL: "auth.example/verify"}},
		{"another scheme", auth.ForwardOptions{URL: "ftp://auth.example/verify"}},
		{"no host", auth.ForwardOptions{URL: "http:///verify"}},
		{"bad copy header", auth.ForwardOptions{URL: "http://auth.example/", CopyHeaders: []string{"X-User:"}}},
		{"bad request header", auth.ForwardOptions{URL: "http://auth.example/", RequestHeaders: []string{"Two words"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if f, err := auth.NewForward(tc.o); err == nil {
				f.Close()
				t.Errorf("NewForward(%+v): no error", tc.o)
			}
		})
	}
}
