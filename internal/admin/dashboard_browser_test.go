package admin_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// In a browser: the dashboard's charts fill from the live stream, its
// buttons run operations, its sign-in guards them, and it works without
// JavaScript. go test -run Browser ./internal/admin runs them (see
// browser_helpers_test.go for finding Chromium).

// browserTimeout bounds each browser test: generous, as the machine
// that runs them may be busy with other tests.
const browserTimeout = 3 * time.Minute

// liveWait bounds a wait for the page to show what the server has: the
// stream sends an update each second.
const liveWait = 30 * time.Second

// openDashboard loads the admin page at base and waits until its live
// stream is open.
func openDashboard(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	do(t, ctx, "open the dashboard", chromedp.Navigate(base+"/"))
	waitJS(t, ctx, liveWait, "the live stream to open and deliver an update",
		`document.body.dataset.live === 'on' && +document.body.dataset.updates > 0`, chartsDiagnosis)
}

// confirmAction clicks an action's button, then Confirm in the dialog
// it opens.
func confirmAction(t *testing.T, ctx context.Context, button string) {
	t.Helper()
	do(t, ctx, "click "+button,
		chromedp.Click(chromedp.CSS(button)),
		chromedp.WaitVisible(chromedp.CSS(`dialog#confirm #confirm-ok`)),
		chromedp.Click(chromedp.CSS(`#confirm-ok`)),
	)
}

// TestBrowserDashboardFillsLive: a page opened before any traffic shows,
// through its live stream alone (no reload), the request rate, latency,
// the 5xx of a crash by its cause, the crash in the timeline, and a
// route rule's refusal by its cause.
func TestBrowserDashboardFillsLive(t *testing.T) {
	t.Parallel()
	g := start(t, 2, withDeniedRoute)
	ctx := browser(t, browserTimeout)
	openDashboard(t, ctx, g.AdminURL)
	// Before any request: the rate chart is there, at zero.
	if d := dataset(t, ctx, `#_all-rps path[data-series="requests"]`); d == nil || d["max"] != "" && d["max"] != "0" {
		t.Fatalf("before any request, #_all-rps requests is %v; want present and at zero", d)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#rules-web [data-rules]').length`); n != 0 {
		t.Fatalf("before any request, #rules-web shows route rules' answers")
	}
	// A reload of the page would lose this mark: it proves the values
	// below came over the stream into the page first loaded.
	eval[string](t, ctx, `window.gatehouseTestMark = 'first load'`)

	l := startLoad(t, g.URL+"/", 4)
	l.waitAnswers(t, 20, "to the load before the crash")
	// A POST is not retried: one instance exits mid-request, the client
	// gets a 502 whose cause gatehouse names.
	resp, err := client(t).Post(g.URL+"/crash", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatalf("POST /crash: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	cause := resp.Header.Get("Gatehouse-Cause")
	if resp.StatusCode != http.StatusBadGateway || cause == "" {
		t.Fatalf("POST /crash: %d, Gatehouse-Cause %q; want 502 with a cause", resp.StatusCode, cause)
	}
	refused, err := client(t).Get(g.URL + "/private/x")
	if err != nil {
		t.Fatalf("GET /private/x: %v", err)
	}
	io.Copy(io.Discard, refused.Body)
	refused.Body.Close()
	if refused.StatusCode != http.StatusForbidden {
		t.Fatalf("GET /private/x from loopback, denied: %d; want 403", refused.StatusCode)
	}
	// The load goes on while the page fills.
	for _, c := range []struct{ what, expr string }{
		{"a request rate in #_all-rps", seriesJS("_all-rps", "requests")},
		{"a request rate in #web-rps", seriesJS("web-rps", "requests")},
		{"a p99 latency in #web-latency", seriesJS("web-latency", "p99")},
		{"a p99 latency in #_all-latency", seriesJS("_all-latency", "p99")},
		{"the crash's cause " + cause + " in #web-errors", seriesJS("web-errors", cause)},
		{"the crash's cause " + cause + " in #_all-errors", seriesJS("_all-errors", cause)},
		{"memory of web's instances in #web-memory", `document.querySelectorAll('#web-memory path[data-series]:not([data-points="0"])').length >= 2`},
		{"an exit event, marked bad, in the timeline", `document.querySelector('#events ol.events li.bad[data-type="exit"]')`},
		{"instance rows in #instances-web", `document.querySelectorAll('#instances-web tr[data-instance]').length === 2`},
		{"the 403 by its cause in #rules-web", `document.querySelector('#rules-web [data-cause="access_denied"] b')?.textContent === '1'`},
	} {
		waitJS(t, ctx, liveWait, c.what, c.expr, chartsDiagnosis)
	}
	l.end()
	counts, failures := l.counts()
	t.Logf("load: answers by status %v (first failures %q); crash: 502 %s", counts, failures, cause)
	if counts[http.StatusOK] == 0 {
		t.Fatalf("no request of the load succeeded: %v %q", counts, failures)
	}
	if mark := eval[string](t, ctx, `String(window.gatehouseTestMark)`); mark != "first load" {
		t.Errorf("the page was reloaded (mark %q): the values did not come over the live stream", mark)
	}
	t.Logf("the page took %s live updates", eval[string](t, ctx, `String(document.body.dataset.updates)`))
}

// TestBrowserReloadWithoutFailedRequests: Reload, clicked and confirmed
// in the page, replaces every instance while requests keep flowing, and
// not one of them fails; the page reports the operation done.
func TestBrowserReloadWithoutFailedRequests(t *testing.T) {
	t.Parallel()
	g := start(t, 2, nil)
	ctx := browser(t, browserTimeout)
	openDashboard(t, ctx, g.AdminURL)
	before := pids(status(t, g, ""), "web")

	l := startLoad(t, g.URL+"/", 4)
	l.waitAnswers(t, 20, "before the reload")
	confirmAction(t, ctx, `#app-web button[data-action="reload"]`)
	waitJS(t, ctx, 90*time.Second, "#op to say the reload is done",
		`document.querySelector('#op[data-state="ok"]') || document.querySelector('#op[data-state="failed"]')`, opDiagnosis)
	if d := dataset(t, ctx, "#op"); d["state"] != "ok" {
		t.Fatalf("reload from the page: %s", eval[string](t, ctx, opDiagnosis))
	}
	l.waitAnswers(t, 20, "from the new instances alone")
	l.end()

	counts, failures := l.counts()
	total := 0
	for _, n := range counts {
		total += n
	}
	t.Logf("%d requests during the reload, by status %v", total, counts)
	if counts[http.StatusOK] != total || total == 0 {
		t.Errorf("requests during the reload: %v, first failures %q; want every one 200", counts, failures)
	}
	after := pids(status(t, g, ""), "web")
	for pid, in := range after {
		if _, ok := before[pid]; ok {
			t.Errorf("instance %s (pid %d) was there before the reload too: before %v, after %v", in, pid, before, after)
		}
	}
	if len(after) != 2 {
		t.Errorf("after the reload: %v; want 2 instances", after)
	}
	// The page follows: its instance table shows the new processes.
	for pid := range after {
		waitJS(t, ctx, liveWait, "pid "+itoa(pid)+" in #instances-web",
			`document.getElementById('instances-web').textContent.includes('`+itoa(pid)+`')`, `document.getElementById('instances-web').textContent`)
	}
}

// dashboardToken is the admin token of the sign-in tests.
const dashboardToken = "dashboard-t0ken"

// startWithToken runs one instance behind an admin API with a token.
func startWithToken(t *testing.T) *harness.Gatehouse {
	t.Helper()
	return start(t, 1, func(cfg *config.Config) { cfg.AdminToken = dashboardToken })
}

// TestBrowserActionsNeedSignIn: with a token, the page is behind a
// sign-in form; once signed in its actions work, and once the session
// cookie is gone they fail with 401 and say so.
func TestBrowserActionsNeedSignIn(t *testing.T) {
	t.Parallel()
	g := startWithToken(t)
	ctx := browser(t, browserTimeout)
	do(t, ctx, "open the dashboard", chromedp.Navigate(g.AdminURL+"/"))
	if loc := get(t, ctx, "read the location", chromedp.Location()); !strings.HasSuffix(loc, "/login") {
		t.Fatalf("without a session the dashboard went to %s; want /login", loc)
	}
	do(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.CSS(`input#token`), dashboardToken),
		chromedp.Submit(chromedp.CSS(`input#token`)),
		chromedp.WaitReady(chromedp.CSS(`#app-web`)),
	)
	if loc := get(t, ctx, "read the location", chromedp.Location()); loc != g.AdminURL+"/" {
		t.Errorf("after signing in the page is %s; want %s/", loc, g.AdminURL)
	}
	waitJS(t, ctx, liveWait, "the live stream to open with the session cookie",
		`document.body.dataset.live === 'on' && +document.body.dataset.updates > 0`, chartsDiagnosis)

	const reload = `#app-web button[data-action="reload"]`
	confirmAction(t, ctx, reload)
	waitJS(t, ctx, 90*time.Second, "#op to say the reload is done",
		`document.querySelector('#op[data-state="ok"]')`, opDiagnosis)

	if _, err := chromedp.Call(ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		t.Fatalf("delete the cookies: %v", err)
	}
	confirmAction(t, ctx, reload)
	waitJS(t, ctx, liveWait, "#op to say the reload failed",
		`document.querySelector('#op[data-state="failed"]')`, opDiagnosis)
	title := get(t, ctx, "read #op-title", chromedp.Text(chromedp.CSS(`#op-title`)))
	result := get(t, ctx, "read #op-result", chromedp.Text(chromedp.CSS(`#op-result`)))
	if !strings.Contains(title, "401") || !strings.Contains(result, "admin token required") {
		t.Errorf("#op after the session ended: %q / %q; want a 401 saying a token is required", title, result)
	}
}

// TestDashboardSignIn (no browser): the sign-in's answers, and the
// cross-origin refusal that holds even with a valid session cookie.
func TestDashboardSignIn(t *testing.T) {
	t.Parallel()
	g := startWithToken(t)
	c := client(t)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	send := func(method, path, body string, header ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, g.AdminURL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}

	resp, _ := send(http.MethodPost, "/login", "token="+dashboardToken)
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "gatehouse_session" {
			session = ck
		}
	}
	if resp.StatusCode != http.StatusSeeOther || session == nil || !session.HttpOnly {
		t.Fatalf("POST /login with the token: %d, cookie %v; want 303 and an HttpOnly gatehouse_session", resp.StatusCode, session)
	}
	cookie := session.Name + "=" + session.Value
	pid := g.Instances("web")[0].PID

	for _, tc := range []struct {
		name, method, path, body string
		header                   []string
		want                     int
		location                 string
	}{
		{name: "page without a session goes to sign in", method: "GET", path: "/", want: http.StatusSeeOther, location: "/login"},
		{name: "sign-in form", method: "GET", path: "/login", want: http.StatusOK},
		{name: "wrong token", method: "POST", path: "/login", body: "token=wrong", want: http.StatusUnauthorized},
		{name: "page with the session", method: "GET", path: "/", header: []string{"Cookie", cookie}, want: http.StatusOK},
		{name: "API without a session", method: "GET", path: "/api/status", want: http.StatusUnauthorized},
		{name: "API with the session", method: "GET", path: "/api/status", header: []string{"Cookie", cookie}, want: http.StatusOK},
		{name: "API with a forged session", method: "GET", path: "/api/status", header: []string{"Cookie", "gatehouse_session=" + strings.Repeat("0", 64)}, want: http.StatusUnauthorized},
		{name: "cross-origin action with the session", method: "POST", path: "/api/apps/web/restart",
			header: []string{"Cookie", cookie, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}, want: http.StatusForbidden},
		{name: "cross-origin action with the token", method: "POST", path: "/api/apps/web/restart",
			header: []string{"Authorization", "Bearer " + dashboardToken, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}, want: http.StatusForbidden},
		{name: "cross-origin sign-out", method: "POST", path: "/logout",
			header: []string{"Cookie", cookie, "Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}, want: http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := send(tc.method, tc.path, tc.body, tc.header...)
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s: %d; want %d\n%s", tc.method, tc.path, resp.StatusCode, tc.want, body)
			}
			if got := resp.Header.Get("Location"); tc.location != "" && got != tc.location {
				t.Errorf("%s %s: Location %q; want %q", tc.method, tc.path, got, tc.location)
			}
		})
	}
	if got := g.Instances("web")[0]; got.PID != pid || got.Restarts != 0 {
		t.Errorf("a cross-origin POST restarted web-1: pid %d → %d, restarts %d", pid, got.PID, got.Restarts)
	}
}

// TestDashboardServerRendered (no browser): the page is rendered on the
// server, so its charts and tables are there for a plain HTTP client.
func TestDashboardServerRendered(t *testing.T) {
	t.Parallel()
	g := start(t, 2, nil)
	doc, err := html.Parse(bytes.NewReader(getBody(t, client(t), g.AdminURL+"/", http.StatusOK)))
	if err != nil {
		t.Fatalf("parse the dashboard: %v", err)
	}
	var charts, series, rows []string
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch {
			case n.Data == "figure" && hasClass(n, "chart"):
				charts = append(charts, attr(n, "id"))
			case n.Data == "path" && attr(n, "data-series") != "":
				series = append(series, attr(n, "data-series"))
			case n.Data == "tr" && attr(n, "data-instance") != "" && inside(n, "instances-web"):
				rows = append(rows, attr(n, "data-instance"))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, prefix := range []string{"_all", "web"} {
		for _, kind := range []string{"rps", "errors", "latency", "load", "memory", "cpu"} {
			if !slices.Contains(charts, prefix+"-"+kind) {
				t.Errorf("the page has no chart %s-%s; it has %v", prefix, kind, charts)
			}
		}
	}
	for _, s := range []string{"requests", "p50", "p95", "p99", "in flight", "held"} {
		if !slices.Contains(series, s) {
			t.Errorf("the page's charts have no series %q; they have %v", s, series)
		}
	}
	if !slices.Equal(rows, []string{"web-1", "web-2"}) {
		t.Errorf("#instances-web rows %v; want web-1, web-2", rows)
	}
}

// An external pool's instances are not gatehouse's processes: its
// section has no memory and CPU charts, whatever has been sampled.
func TestDashboardExternalPoolHasNoProcessCharts(t *testing.T) {
	t.Parallel()
	cfg, _ := harness.FaultApp(t, 1)
	edge := config.NewApp("web")
	edge.Upstreams = []string{testutil.ClosedAddr(t)}
	edge.Routes = config.PlainRoutes("/")
	cfg.Apps = map[string]*config.App{"web": edge}
	g := harness.Start(t, cfg)
	testutil.WaitFor(t, 10*time.Second, "the pool's member", func() bool { return len(g.Instances("web")) == 1 })
	var charts []string
	for _, n := range findAll(page(t, g), func(n *html.Node) bool { return n.Data == "figure" && hasClass(n, "chart") }) {
		charts = append(charts, attr(n, "id"))
	}
	want := []string{"_all-rps", "_all-errors", "_all-latency", "_all-load", "_all-memory", "_all-cpu",
		"web-rps", "web-errors", "web-latency", "web-load"}
	if diff := cmp.Diff(want, charts); diff != "" {
		t.Errorf("charts (-want +got):\n%s", diff)
	}
}

// TestBrowserDashboardWithoutJavaScript: in a browser with scripts off,
// the instance table and the charts are there.
func TestBrowserDashboardWithoutJavaScript(t *testing.T) {
	t.Parallel()
	g := start(t, 2, nil)
	ctx := browser(t, browserTimeout)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatalf("turn scripts off: %v", err)
	}
	do(t, ctx, "open the dashboard with scripts off", chromedp.Navigate(g.AdminURL+"/"))
	nodes := get(t, ctx, "find the instance rows", chromedp.Nodes(chromedp.CSSAll(`#instances-web tr[data-instance]`)))
	if live := get(t, ctx, "read body[data-live]", chromedp.AttributeValue(chromedp.CSS(`body`), "data-live")); live.Exists {
		t.Errorf("body has data-live=%q: the page's script ran with scripts off", live.Value)
	}
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.AttributeValue("data-instance"))
	}
	if !slices.Equal(ids, []string{"web-1", "web-2"}) {
		t.Errorf("with scripts off, #instances-web rows %v; want web-1, web-2", ids)
	}
	get(t, ctx, "find the p99 series with scripts off", chromedp.Nodes(chromedp.CSSAll(`#web-latency path[data-series="p99"]`)))
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, class string) bool {
	return slices.Contains(strings.Fields(attr(n, "class")), class)
}

// inside reports whether an ancestor of n has the id.
func inside(n *html.Node, id string) bool {
	for p := n.Parent; p != nil; p = p.Parent {
		if attr(p, "id") == id {
			return true
		}
	}
	return false
}
