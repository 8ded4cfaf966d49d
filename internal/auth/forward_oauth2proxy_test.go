package auth_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/auth"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// oauth2Proxy starts oauth2-proxy on loopback, with a provider it never
// reaches, an htpasswd file for a session without one (alice, password
// "s3cret") and a static upstream, and returns its base URL. The binary is $GATEHOUSE_OAUTH2_PROXY, else oauth2-proxy on
// PATH; without either the test is skipped:
//
//	GOBIN=/tmp/gotools go install github.com/oauth2-proxy/oauth2-proxy/v7@v7.15.6
//	GATEHOUSE_OAUTH2_PROXY=/tmp/gotools/oauth2-proxy go test ./internal/auth
func oauth2Proxy(t *testing.T) string {
	t.Helper()
	testutil.SkipInShort(t)
	bin := os.Getenv("GATEHOUSE_OAUTH2_PROXY")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("oauth2-proxy"); err != nil {
			t.Skip("oauth2-proxy: neither GATEHOUSE_OAUTH2_PROXY nor on PATH")
		}
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte("alice:"+hash(t, "s3cret")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	cmd := exec.Command(bin,
		"--http-address="+addr,
		"--upstream=static://202",
		"--provider=google", "--client-id=gatehouse-test", "--client-secret=not-a-secret",
		"--cookie-secret=0123456789abcdef0123456789abcdef", "--cookie-secure=false",
		"--email-domain=*",
		"--skip-provider-button",
		"--htpasswd-file="+htpasswd, "--set-xauthrequest",
		"--reverse-proxy", "--trusted-proxy-ip=127.0.0.1/32",
	)
	var out testutil.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("oauth2-proxy's output:\n%s", out.Tail(4<<10))
		}
	})
	base := "http://" + addr
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	testutil.WaitFor(t, 30*time.Second, "oauth2-proxy to answer /ping", func() bool {
		resp, err := c.Get(base + "/ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base
}

// Against a real oauth2-proxy: /oauth2/auth denies a client without a
// session 401, a forged session cookie too, and allows one with a session
// (from its htpasswd file) 202, naming the user; the sign-in redirect of
// /oauth2/start is relayed with its CSRF cookie, not followed to the
// provider.
func TestForwardAgainstOAuth2Proxy(t *testing.T) {
	t.Parallel()
	base := oauth2Proxy(t)
	tests := []struct {
		name       string
		path       string
		cookie     string
		basic      string // user:password
		wantStatus int
		check      func(t *testing.T, d auth.Decision)
	}{
		{name: "no session", path: "/oauth2/auth", wantStatus: http.StatusUnauthorized},
		{name: "forged session", path: "/oauth2/auth", cookie: "_oauth2_proxy=forged", wantStatus: http.StatusUnauthorized},
		{name: "wrong password", path: "/oauth2/auth", basic: "alice:guess", wantStatus: http.StatusUnauthorized},
		{
			name: "session", path: "/oauth2/auth", basic: "alice:s3cret", wantStatus: http.StatusAccepted,
			check: func(t *testing.T, d auth.Decision) {
				want := http.Header{"X-Auth-Request-User": {"alice"}, "X-Auth-Request-Email": nil}
				if d.User != "alice" || !cmp.Equal(d.Copy, want) {
					t.Errorf("User %q, Copy %v; want alice, %v", d.User, d.Copy, want)
				}
			},
		},
		{
			name: "sign-in redirect", path: "/oauth2/start?rd=%2Fdashboard", wantStatus: http.StatusFound,
			check: func(t *testing.T, d auth.Decision) {
				if loc := d.Header.Get("Location"); !strings.HasPrefix(loc, "https://accounts.google.com/") {
					t.Errorf("Location %q, want the provider's sign-in", loc)
				}
				if c := strings.Join(d.Header.Values("Set-Cookie"), "; "); !strings.Contains(c, "_oauth2_proxy_csrf=") {
					t.Errorf("Set-Cookie %q, want the CSRF cookie", c)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newForward(t, auth.ForwardOptions{URL: base + tc.path, CopyHeaders: []string{"X-Auth-Request-User", "X-Auth-Request-Email"}})
			r := clientRequest("GET", "https://app.example/dashboard", "", map[string]string{"Accept": "text/html"})
			if tc.cookie != "" {
				r.Header.Set("Cookie", tc.cookie)
			}
			if u, p, ok := strings.Cut(tc.basic, ":"); ok {
				r.SetBasicAuth(u, p)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			d, err := f.Check(ctx, r, auth.Origin{ClientIP: "192.0.2.7", Scheme: "https"})
			if err != nil {
				t.Fatal(err)
			}
			if allowed := tc.wantStatus/100 == 2; d.Allowed != allowed || !allowed && d.Status != tc.wantStatus {
				t.Fatalf("Allowed %v, Status %d; want a %d (body %q)", d.Allowed, d.Status, tc.wantStatus, d.Body)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}
