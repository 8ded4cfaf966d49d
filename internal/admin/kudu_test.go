package admin_test

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/server"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// The Kudu-style admin API (log stream, env, dump) and the admin token,
// against a real gatehouse and fault app.

const secret = "hunter2-do-not-leak"

// start runs n fault-app instances with a secret and a harmless variable
// in their env, and waits until they are ready.
func start(t *testing.T, n int, adjust func(*config.Config)) *harness.Gatehouse {
	t.Helper()
	cfg, app := harness.FaultApp(t, n)
	cfg.SampleInterval = config.Duration(200 * time.Millisecond)
	app.StopTimeout = config.Duration(2 * time.Second)
	app.Env = map[string]string{"DB_PASSWORD": secret, "GREETING": "hello"}
	if adjust != nil {
		adjust(cfg)
	}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", n, 15*time.Second)
	return g
}

func client(t *testing.T) *http.Client {
	t.Helper()
	c := harness.Client(20 * time.Second)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func getBody(t *testing.T, c *http.Client, u string, want int) []byte {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != want {
		t.Fatalf("GET %s: %d %v; want %d\n%s", u, resp.StatusCode, err, want, b)
	}
	return b
}

// A line the app prints reaches a log stream client within a second.
func TestLogstreamDeliversAppOutput(t *testing.T) {
	t.Parallel()
	g := start(t, 1, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.AdminURL+"/api/logstream?app=web", nil)
	sc := &http.Client{}
	defer sc.CloseIdleConnections()
	resp, err := sc.Do(req)
	if err != nil {
		t.Fatalf("GET /api/logstream: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /api/logstream: %d %q; want 200 text/event-stream", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	msg := "logstream-probe-" + time.Now().Format("150405.000000")
	got := make(chan telemetry.LogLine, 1)
	readDone := make(chan error, 1)
	go func() {
		br := bufio.NewReader(resp.Body)
		event := ""
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				readDone <- err
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: ") && event == "log":
				var l telemetry.LogLine
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &l) == nil && strings.Contains(l.Line, msg) {
					got <- l // once: the message is unique
				}
			}
		}
	}()
	c := client(t)
	sent := time.Now()
	getBody(t, c, g.URL+"/print?msg="+url.QueryEscape(msg), 200)
	select {
	case l := <-got:
		if d := time.Since(sent); d > time.Second {
			t.Errorf("the printed line took %v to reach the log stream; want within 1s", d)
		}
		if l.App != "web" || l.Instance != "web-1" || l.Line != msg {
			t.Errorf("log stream line %+v; want app web, instance web-1, line %q", l, msg)
		}
	case err := <-readDone:
		t.Fatalf("the log stream ended before the printed line arrived: %v", err)
	case <-time.After(3 * time.Second):
		t.Fatalf("the line the app printed (%q) did not reach the log stream within 3s", msg)
	}
	cancel()
	<-readDone
}

func TestEnvRedactsSecrets(t *testing.T) {
	t.Parallel()
	g := start(t, 1, nil)
	body := getBody(t, client(t), g.AdminURL+"/api/env?app=web", 200)
	if strings.Contains(string(body), secret) {
		t.Errorf("/api/env leaks DB_PASSWORD's value:\n%s", body)
	}
	var out struct {
		Apps map[string]map[string]string `json:"apps"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("decode /api/env: %v\n%s", err, body)
	}
	env := out.Apps["web"]
	if env["DB_PASSWORD"] != "REDACTED" {
		t.Errorf("/api/env DB_PASSWORD = %q; want REDACTED", env["DB_PASSWORD"])
	}
	if env["GREETING"] != "hello" {
		t.Errorf("/api/env GREETING = %q; want hello (harmless values are kept)", env["GREETING"])
	}
}

func TestDumpBundle(t *testing.T) {
	t.Parallel()
	g := start(t, 2, nil)
	c := client(t)
	for range 4 {
		getBody(t, c, g.URL+"/", 200)
	}
	files := getDump(t, c, g.AdminURL, "")
	want := []string{"config.json", "status.json", "events.json", "processes.json", "access.log", "goroutines.txt",
		"logs/web/web-1.log", "logs/web/web-2.log"}
	for _, name := range admin.DumpFiles {
		if !slices.Contains(want, name) {
			t.Errorf("admin.DumpFiles names %s, which the contract does not", name)
		}
	}
	for _, name := range want {
		if _, ok := files[name]; !ok {
			t.Errorf("/api/dump has no %s; it has %v", name, keys(files))
		}
	}
	for name, b := range files {
		if path.Ext(name) == ".json" && !json.Valid(b) {
			t.Errorf("/api/dump %s is not valid JSON:\n%.500s", name, b)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("/api/dump %s leaks DB_PASSWORD's value", name)
		}
	}
	var cfg struct {
		Apps map[string]struct {
			Env map[string]string
		}
	}
	if err := json.Unmarshal(files["config.json"], &cfg); err != nil {
		t.Fatalf("dump config.json: %v", err)
	}
	env := cfg.Apps["web"].Env
	if env["DB_PASSWORD"] != "REDACTED" || env["GREETING"] != "hello" {
		t.Errorf("dump config.json env = %v; want DB_PASSWORD REDACTED and GREETING hello", env)
	}
	if len(files["access.log"]) == 0 || !strings.Contains(string(files["goroutines.txt"]), "goroutine") {
		t.Errorf("dump access.log (%d bytes) or goroutines.txt look empty", len(files["access.log"]))
	}
}

// A dump said to redact every secret must not carry the alert receivers'
// webhook URLs, nor their Authorization and X-Api-Key headers: every
// secret field of the config is redacted, by its tag.
func TestDumpRedactsEverySecret(t *testing.T) {
	t.Parallel()
	const (
		token     = "admin-t0ken-do-not-leak"
		hookPath  = "T0000/B0000/slack-hook-do-not-leak"
		bearer    = "bearer-do-not-leak"
		apiKey    = "api-key-do-not-leak"
		urlPasswd = "url-passw0rd-do-not-leak"
	)
	g := start(t, 1, func(cfg *config.Config) {
		cfg.AdminToken = token
		cfg.Apps["web"].Env["DATABASE_URL"] = "postgres://app:" + urlPasswd + "@db.internal/app"
		cfg.Alerts = config.NewAlerts()
		slack, hook := config.NewReceiver(), config.NewReceiver()
		slack.Name, slack.Format = "slack", config.FormatSlack
		// Nothing listens on port 9: no alert fires in this test, and one
		// that did would fail to deliver, not reach anybody.
		slack.URL = "http://127.0.0.1:9/services/" + hookPath
		hook.Name = "pager"
		hook.URL = "http://127.0.0.1:9/v2/enqueue"
		hook.Headers = map[string]string{"Authorization": "Bearer " + bearer, "X-Api-Key": apiKey}
		cfg.Alerts.Receivers = []*config.Receiver{slack, hook}
	})
	files := getDump(t, client(t), g.AdminURL, token)
	for name, b := range files {
		for _, s := range []string{secret, token, hookPath, "/v2/enqueue", bearer, apiKey, urlPasswd} {
			if strings.Contains(string(b), s) {
				t.Errorf("/api/dump %s leaks %q", name, s)
			}
		}
	}
	var cfg struct {
		AdminToken string
		Apps       map[string]struct{ Env map[string]string }
		Alerts     struct {
			Receivers []struct {
				Name, URL, Format string
				Headers           map[string]string
			}
		}
	}
	if err := json.Unmarshal(files["config.json"], &cfg); err != nil {
		t.Fatalf("dump config.json: %v", err)
	}
	if cfg.AdminToken != "REDACTED" {
		t.Errorf("dump config.json admin token = %q; want REDACTED", cfg.AdminToken)
	}
	if got, want := cfg.Apps["web"].Env["DATABASE_URL"], "postgres://app:REDACTED@db.internal/app"; got != want {
		t.Errorf("dump config.json DATABASE_URL = %q; want %q", got, want)
	}
	type receiver = struct {
		Name, URL, Format string
		Headers           map[string]string
	}
	want := []receiver{
		{Name: "slack", URL: "REDACTED", Format: "slack"},
		{Name: "pager", URL: "REDACTED", Format: "json", Headers: map[string]string{"Authorization": "REDACTED", "X-Api-Key": "REDACTED"}},
	}
	if !reflect.DeepEqual(cfg.Alerts.Receivers, want) {
		t.Errorf("dump config.json receivers = %+v; want %+v (names kept, url and header values redacted)", cfg.Alerts.Receivers, want)
	}
}

// getDump fetches GET /api/dump (with token, if any) and returns its
// files by path under the bundle's gatehouse-dump-TIME/ directory.
func getDump(t *testing.T, c *http.Client, adminURL, token string) map[string][]byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, adminURL+"/api/dump", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET /api/dump: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /api/dump: %d", resp.StatusCode)
	}
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatalf("/api/dump is not gzip: %v", err)
	}
	tr := tar.NewReader(zr)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("/api/dump is not a valid tar: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("/api/dump: read %s: %v", h.Name, err)
		}
		// Entries live under one gatehouse-dump-TIME/ directory.
		dir, rest, ok := strings.Cut(h.Name, "/")
		if !ok || !strings.HasPrefix(dir, "gatehouse-dump-") {
			t.Errorf("/api/dump entry %q is not under gatehouse-dump-TIME/", h.Name)
		}
		files[rest] = b
	}
	if err := zr.Close(); err != nil {
		t.Errorf("/api/dump gzip: %v", err)
	}
	return files
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// An admin listener off loopback without a token would hand process
// control and secrets to the network: gatehouse refuses to start.
func TestAdminOffLoopbackNeedsToken(t *testing.T) {
	t.Parallel()
	cfg, _ := harness.FaultApp(t, 1)
	cfg.Admin = "0.0.0.0:0"
	srv, err := server.New(cfg, server.Options{})
	if err == nil {
		// Release what New bound: run it with a context already done.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		srv.Run(ctx)
		t.Fatalf("server.New with admin 0.0.0.0:0 and no token succeeded; want an error")
	}
	for _, s := range []string{"admin_token", "GATEHOUSE_ADMIN_TOKEN"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("server.New error %q does not name %s", err, s)
		}
	}
}

// With a token, the admin API answers only requests that carry it. The
// listener binds every interface; requests go to 127.0.0.1 only.
func TestAdminToken(t *testing.T) {
	t.Parallel()
	const token = "t0ken-for-tests"
	g := start(t, 1, func(cfg *config.Config) {
		cfg.Admin = "0.0.0.0:0"
		cfg.AdminToken = token
	})
	_, port, err := net.SplitHostPort(g.Srv.AdminAddr())
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + port
	c := client(t)
	send := func(p, auth string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+p, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, p := range []string{"/api/status", "/api/env?app=web", "/api/diagnose"} {
		if got := send(p, ""); got != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %d; want 401", p, got)
		}
		if got := send(p, "Bearer wrong"); got != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token: %d; want 401", p, got)
		}
		if got := send(p, "Bearer "+token); got != http.StatusOK {
			t.Errorf("GET %s with the token: %d; want 200", p, got)
		}
	}
}

// A web page the operator happens to visit must not be able to restart,
// scale or reload the app through the admin API on loopback (no token
// there): a browser sends such a cross-site form POST without asking.
func TestAdminRefusesCrossSiteOperations(t *testing.T) {
	t.Parallel()
	g := start(t, 1, nil)
	pid := g.Instances("web")[0].PID
	c := client(t)
	req, _ := http.NewRequest(http.MethodPost, g.AdminURL+"/api/apps/web/restart", nil)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST restart: %d %s; want 403", resp.StatusCode, b)
	}
	if got := g.Instances("web")[0]; got.PID != pid || got.Restarts != 0 {
		t.Errorf("a cross-site POST restarted web-1: pid %d → %d, restarts %d", pid, got.PID, got.Restarts)
	}
}

// Without a token, the admin API answers only to loopback host names, so
// a DNS name rebound to 127.0.0.1 cannot read it from a browser.
func TestAdminRefusesForeignHostWithoutToken(t *testing.T) {
	t.Parallel()
	g := start(t, 1, nil)
	c := client(t)
	for _, tc := range []struct {
		host string
		want int
	}{
		{"", http.StatusOK}, // the URL's own 127.0.0.1:PORT
		{"localhost", http.StatusOK},
		{"[::1]:9901", http.StatusOK},
		{"evil.example:9901", http.StatusForbidden},
		{"10.0.0.1", http.StatusForbidden},
	} {
		t.Run(tc.host, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, g.AdminURL+"/api/env?app=web", nil)
			if tc.host != "" {
				req.Host = tc.host
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("Host %q: status %d, want %d", tc.host, resp.StatusCode, tc.want)
			}
		})
	}
}
