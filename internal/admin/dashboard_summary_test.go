package admin_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"golang.org/x/net/html"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// The top of the dashboard says what needs someone now: apps not ready,
// alerts firing, current critical findings; or, in one line, that all is
// well. These tests check it in the served HTML and in a browser, with
// scripts off and on.

// startCrashLooping runs one instance of the fault app that exits as it
// starts, and waits for its third exit: a restart loop.
func startCrashLooping(t *testing.T) *harness.Gatehouse {
	t.Helper()
	cfg, app := harness.FaultApp(t, 1, "-exit-at-start", "1")
	cfg.SampleInterval = config.Duration(200 * time.Millisecond)
	app.StopTimeout = config.Duration(2 * time.Second)
	app.HoldTimeout = config.Duration(time.Second)
	g := harness.Start(t, cfg)
	testutil.WaitFor(t, 30*time.Second, "3 exits of web-1", func() bool {
		return len(g.Events(telemetry.EventExit)) >= 3
	})
	return g
}

// page fetches the dashboard and parses it.
func page(t *testing.T, g *harness.Gatehouse) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(getBody(t, client(t), g.AdminURL+"/", http.StatusOK)))
	if err != nil {
		t.Fatalf("parse the dashboard: %v", err)
	}
	return doc
}

// findAll returns the elements under n that match, in document order.
func findAll(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	if n.Type == html.ElementNode && match(n) {
		out = append(out, n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		out = append(out, findAll(c, match)...)
	}
	return out
}

// problem matches a summary line of a kind, with attr=val when attr is
// given.
func problem(kind, attrName, val string) func(*html.Node) bool {
	return func(n *html.Node) bool {
		return n.Data == "li" && attr(n, "data-problem") == kind && inside(n, "summary") && (attrName == "" || attr(n, attrName) == val)
	}
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for _, t := range findAllText(n) {
		b.WriteString(t)
	}
	return b.String()
}

func findAllText(n *html.Node) []string {
	if n.Type == html.TextNode {
		return []string{n.Data}
	}
	var out []string
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		out = append(out, findAllText(c)...)
	}
	return out
}

// A crash-looping app is at the top of the served page, before any
// chart: not ready with its instance's state, and its restart_loop as a
// critical finding. Once the app is stopped (no instance left), the
// finding the page shows for web-1 is past, and the summary says all is
// well.
func TestDashboardSummaryPutsACrashLoopFirst(t *testing.T) {
	t.Parallel()
	g := startCrashLooping(t)
	doc := page(t, g)
	h2 := findAll(doc, func(n *html.Node) bool { return n.Data == "h2" })
	if len(h2) == 0 || attr(h2[0], "id") != "h-health" || textOf(h2[0]) != "Health" {
		t.Fatalf("the page's first heading is not Health; its headings are %q", texts(h2))
	}
	notReady := findAll(doc, problem("not-ready", "data-app", "web"))
	if len(notReady) != 1 || !strings.Contains(textOf(notReady[0]), "not ready") || !strings.Contains(textOf(notReady[0]), "0 of 1 instance ready · web-1 ") {
		t.Fatalf("the summary does not say web is not ready: %q", texts(findAll(doc, problem("not-ready", "", ""))))
	}
	critical := findAll(doc, problem("critical", "data-finding", "restart_loop"))
	if len(critical) != 1 || !strings.Contains(textOf(critical[0]), "critical") || !strings.Contains(textOf(critical[0]), "keeps dying soon after it starts") {
		t.Fatalf("the summary lacks the critical restart_loop: %q", texts(findAll(doc, problem("critical", "", ""))))
	}
	if w := findAll(doc, func(n *html.Node) bool { return attr(n, "data-health") == "well" }); len(w) != 0 {
		t.Errorf("the summary says all is well while web crash-loops: %q", texts(w))
	}

	resp, err := client(t).Post(g.AdminURL+"/api/apps/web/stop", "", nil)
	if err != nil {
		t.Fatalf("POST /api/apps/web/stop: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"ok"`) {
		t.Fatalf("POST /api/apps/web/stop: %d %s", resp.StatusCode, b)
	}
	testutil.WaitFor(t, 15*time.Second, "web to have no instance", func() bool { return len(g.Instances("web")) == 0 })

	doc = page(t, g)
	rows := findAll(doc, func(n *html.Node) bool { return n.Data == "tr" && attr(n, "data-finding") == "restart_loop" })
	if len(rows) == 0 {
		t.Fatalf("the findings no longer show web-1's restart_loop")
	}
	for _, r := range rows {
		if _, past := attrOK(r, "data-past"); !past || !strings.Contains(textOf(r), "past") {
			t.Errorf("web-1 no longer runs; its restart_loop row is not marked past: %q", textOf(r))
		}
	}
	if c := findAll(doc, problem("critical", "", "")); len(c) != 0 {
		t.Errorf("the summary still lists critical findings for an instance gone: %q", texts(c))
	}
	if w := findAll(doc, func(n *html.Node) bool { return attr(n, "data-health") == "well" && inside(n, "summary") }); len(w) != 1 || !strings.Contains(textOf(w[0]), "all well") {
		t.Errorf("with web stopped, the summary does not say all is well: %q", texts(findAll(doc, func(n *html.Node) bool { return attr(n, "id") == "summary" })))
	}
}

// The page's icon, and /favicon.ico that browsers ask for on their own,
// are images, served without a token: the sign-in page shows the icon
// too.
func TestDashboardFavicon(t *testing.T) {
	t.Parallel()
	g := startWithToken(t)
	c := client(t)
	for _, path := range []string{"/favicon.ico", "/static/favicon.svg"} {
		resp, err := c.Get(g.AdminURL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "image/") || !bytes.Contains(b, []byte("<svg")) {
			t.Errorf("GET %s without a token: %d %q (%d bytes); want 200 and an image", path, resp.StatusCode, ct, len(b))
		}
	}
	login := string(getBody(t, c, g.AdminURL+"/login", http.StatusOK))
	if !strings.Contains(login, `<link rel="icon" href="/static/favicon.svg"`) {
		t.Errorf("the sign-in page links no icon")
	}
}

// In a browser at 1280×800 with scripts off, the crash loop is on the
// first screen: the summary's heading, web not ready and the critical
// restart_loop all start within the top 600 pixels.
func TestBrowserSummaryOnTheFirstScreenWithoutJavaScript(t *testing.T) {
	t.Parallel()
	g := startCrashLooping(t)
	ctx := browser(t, browserTimeout)
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatalf("turn scripts off: %v", err)
	}
	do(t, ctx, "open the dashboard at 1280×800 with scripts off", chromedp.EmulateViewport(1280, 800), chromedp.Navigate(g.AdminURL+"/"))
	if live := get(t, ctx, "read body[data-live]", chromedp.AttributeValue(chromedp.CSS(`body`), "data-live")); live.Exists {
		t.Errorf("body has data-live=%q: the page's script ran with scripts off", live.Value)
	}
	for _, c := range []struct{ what, sel, says string }{
		{"the summary's heading", `h2#h-health`, "Health"},
		{"web not ready", `#summary li[data-problem="not-ready"][data-app="web"]`, "not ready"},
		{"the critical restart_loop", `#summary li[data-problem="critical"][data-finding="restart_loop"]`, "critical"},
	} {
		top := topOf(t, ctx, c.what, c.sel)
		if top >= 600 {
			t.Errorf("%s starts %.0f px down; want on the first screen, above 600", c.what, top)
		}
		if text := get(t, ctx, "read "+c.what, chromedp.TextContent(chromedp.CSS(c.sel))); !strings.Contains(text, c.says) {
			t.Errorf("%s reads %q; want it to say %q", c.what, text, c.says)
		}
	}
	charts := topOf(t, ctx, "the first chart", `figure.chart`)
	if summary := topOf(t, ctx, "the summary", `#summary`); summary >= charts {
		t.Errorf("the summary (%.0f px) is below the first chart (%.0f px)", summary, charts)
	}
}

// With scripts on, a healthy setup's summary is the one all-well line on
// the first screen; when web's probe starts failing the live stream turns
// it, without a reload, into web not ready.
func TestBrowserSummaryAllWellThenLive(t *testing.T) {
	t.Parallel()
	g := start(t, 1, nil)
	ctx := browser(t, browserTimeout)
	do(t, ctx, "size the window 1280×800", chromedp.EmulateViewport(1280, 800))
	openDashboard(t, ctx, g.AdminURL)
	const well = `#summary p[data-health="well"]`
	if top := topOf(t, ctx, "the all-well line", well); top >= 600 {
		t.Errorf("the all-well line starts %.0f px down; want above 600", top)
	}
	if text := get(t, ctx, "read the all-well line", chromedp.TextContent(chromedp.CSS(well))); !strings.Contains(text, "all well") || !strings.Contains(text, "1 instance ready") {
		t.Errorf("the all-well line reads %q", text)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#summary li').length`); n != 0 {
		t.Errorf("a healthy setup's summary lists %d problems", n)
	}
	eval[string](t, ctx, `window.gatehouseTestMark = 'first load'`)

	resp, err := client(t).Get(g.URL + "/set-health?status=500")
	if err != nil {
		t.Fatalf("GET /set-health: %v", err)
	}
	resp.Body.Close()
	waitJS(t, ctx, liveWait, "web not ready in the summary",
		`(() => { const l = document.querySelector('#summary li[data-problem="not-ready"][data-app="web"]'); return l && l.textContent.includes('web-1 unhealthy'); })()`,
		`document.getElementById('summary').textContent`)
	if n := eval[int](t, ctx, `document.querySelectorAll('`+well+`').length`); n != 0 {
		t.Errorf("the summary still says all is well with web-1 unhealthy")
	}
	if mark := eval[string](t, ctx, `String(window.gatehouseTestMark)`); mark != "first load" {
		t.Errorf("the page was reloaded (mark %q): the summary did not change over the live stream", mark)
	}
}

// topOf is how far down the page the element's box starts, in CSS
// pixels (the page is not scrolled). The page is loaded: an element
// missing from it fails the test at once rather than being waited for.
func topOf(t *testing.T, ctx context.Context, what, sel string) float64 {
	t.Helper()
	if n := get(t, ctx, "look for "+what, chromedp.Nodes(chromedp.CSS(sel), chromedp.AtLeast(0))); len(n) == 0 {
		t.Fatalf("%s (%s) is not on the page", what, sel)
	}
	box := get(t, ctx, "measure "+what, chromedp.Dimensions(chromedp.CSS(sel)))
	return box.Border[1]
}

func texts(ns []*html.Node) []string {
	var out []string
	for _, n := range ns {
		out = append(out, textOf(n))
	}
	return out
}

func attrOK(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}
