package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// The dashboard in a real browser: headless Chromium driven over the
// DevTools protocol (chromedp). This file has the browser's start and
// the helpers; the tests are in dashboard_browser_test.go.

// browserEnv, set to 1, makes a missing Chromium a failure rather than a
// skip (CI sets it, so the browser tests cannot silently stop running).
const browserEnv = "GATEHOUSE_BROWSER_TESTS"

// chromiumNames are the executables tried, in order, after
// $GATEHOUSE_CHROMIUM.
var chromiumNames = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell", "chrome"}

// debianChromium is the browser behind Debian's wrapper script.
const debianChromium = "/usr/lib/chromium/chromium"

// chromium finds the browser, or skips the test (fails it when
// GATEHOUSE_BROWSER_TESTS=1).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("GATEHOUSE_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range chromiumNames {
		if p, err := exec.LookPath(n); err == nil {
			// Debian's /usr/bin/chromium is a shell wrapper whose memory
			// check prints a shell error in some containers; the browser
			// it runs takes the same flags.
			if _, err := os.Stat(debianChromium); err == nil && p == "/usr/bin/chromium" {
				return debianChromium
			}
			return p
		}
	}
	if os.Getenv(browserEnv) == "1" {
		t.Fatalf("no Chromium found (tried $GATEHOUSE_CHROMIUM and %v) and %s=1: install the Debian package chromium", chromiumNames, browserEnv)
	}
	t.Skipf("no Chromium found (tried %v); set %s=1 to make this a failure", chromiumNames, browserEnv)
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns
// the context to run actions in. Everything, the browser included, ends
// after timeout or when the test ends: the browser process is closed and
// waited for before the harness stops gatehouse (cleanups run last
// first).
func browser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	testutil.SkipInShort(t) // runs Chromium
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.DisableGPU,
		// No crash reporter, no first-run prompts and no shared memory
		// in /dev/shm (small in containers).
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox.
		opts = append(opts, chromedp.NoSandbox)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		// Closing the first tab's context closes the browser; the
		// allocator's cancel waits for its process to exit.
		if err := chromedp.Cancel(bctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("closing the browser: %v", err)
		}
		bcancel()
		acancel()
		cancel()
	})
	// Start the browser now, so that a broken install fails here with
	// its own message.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	return bctx
}

// do runs steps, failing the test with what they were for.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs an action that returns a value, failing the test with what it
// was for.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return get(t, ctx, "evaluate "+expr, chromedp.Evaluate[T](expr))
}

// waitJS waits until a JavaScript expression is true, evaluating it in
// the page as it loads and on every change to the page, and fails the
// test naming what it waited for, with the page's diagnosis (an
// expression giving a string) when the wait times out.
func waitJS(t *testing.T, ctx context.Context, timeout time.Duration, what, expr, diagnosis string) {
	t.Helper()
	_, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!("+expr+")", chromedp.WithPollingMutation(), chromedp.WithPollingTimeout(timeout)))
	if err == nil {
		return
	}
	var diag string
	if diagnosis != "" && ctx.Err() == nil {
		diag, _ = chromedp.Run(ctx, chromedp.Evaluate[string](diagnosis))
	}
	t.Fatalf("timed out after %v waiting for %s (%v)\npage: %s", timeout, what, err, diag)
}

// dataset returns the data-* attributes of the first element matching a
// CSS selector, nil when there is none.
func dataset(t *testing.T, ctx context.Context, selector string) map[string]string {
	t.Helper()
	return eval[map[string]string](t, ctx, fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? {...e.dataset} : null; })()`, jsString(selector)))
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// seriesJS is a JavaScript expression: true when the chart's series has
// points and a maximum above zero.
func seriesJS(chart, series string) string {
	sel := fmt.Sprintf("#%s path[data-series=%q]", chart, series)
	return fmt.Sprintf(`(() => { const p = document.querySelector(%s); return !!p && +p.dataset.points > 0 && +p.dataset.max > 0; })()`, jsString(sel))
}

// chartsDiagnosis is a JavaScript expression describing the page's live
// state and every series, for a failed wait's message.
const chartsDiagnosis = `'live=' + document.body.dataset.live + ' updates=' + document.body.dataset.updates + '\n' +
	[...document.querySelectorAll('figure.chart path[data-series]')].map((p) => p.closest('figure').id + ' ' + p.dataset.series + ' points=' + p.dataset.points + ' max=' + p.dataset.max).join('\n') +
	'\nevents: ' + [...document.querySelectorAll('#events li')].map((l) => l.dataset.type).join(' ')`

// opDiagnosis describes #op, for a failed wait on an operation.
const opDiagnosis = `(() => { const o = document.getElementById('op'); return 'op state=' + o.dataset.state + ' hidden=' + o.hidden + ': ' + o.textContent; })()`

// load is concurrent GETs of / through the gateway until stop: it
// counts the answers by status, and keeps the first few failures.
type load struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	status   map[int]int
	failures []string
}

// startLoad runs workers goroutines of back-to-back GETs of path.
func startLoad(t *testing.T, url string, workers int) *load {
	t.Helper()
	l := &load{stop: make(chan struct{}), status: map[int]int{}}
	c := client(t)
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.one(c, url)
			}
		}()
	}
	t.Cleanup(l.end) // a test that fails early still stops its load
	return l
}

func (l *load) one(c *http.Client, url string) {
	resp, err := c.Get(url)
	code := 0
	var detail string
	if err != nil {
		detail = err.Error()
	} else {
		code = resp.StatusCode
		detail = resp.Status + " " + resp.Header.Get("Gatehouse-Cause")
		resp.Body.Close()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status[code]++
	if code != http.StatusOK && len(l.failures) < 5 {
		l.failures = append(l.failures, detail)
	}
}

// waitAnswers waits until the load has had n more answers than when it
// was called, whatever their status.
func (l *load) waitAnswers(t *testing.T, n int, what string) {
	t.Helper()
	answered := func() int {
		l.mu.Lock()
		defer l.mu.Unlock()
		total := 0
		for _, k := range l.status {
			total += k
		}
		return total
	}
	from := answered()
	testutil.WaitFor(t, liveWait, fmt.Sprintf("%d answers %s", n, what), func() bool { return answered() >= from+n })
}

// end stops the load and waits for it (idempotent).
func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// counts returns the answers by status (0: no answer) and the first
// failures.
func (l *load) counts() (map[int]int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[int]int{}
	for k, v := range l.status {
		out[k] = v
	}
	return out, append([]string(nil), l.failures...)
}

// status reads GET /api/status (with the bearer token when set).
func status(t *testing.T, g *harness.Gatehouse, token string) admin.StatusResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, g.AdminURL+"/api/status", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client(t).Do(req)
	if err != nil {
		t.Fatalf("GET /api/status: %v", err)
	}
	defer resp.Body.Close()
	var s admin.StatusResponse
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/status: %d %v", resp.StatusCode, err)
	}
	return s
}

// pids are the app's instances' process IDs, as /api/status has them.
func pids(s admin.StatusResponse, app string) map[int]string {
	out := map[int]string{}
	for _, a := range s.Apps {
		if a.Name == app {
			for _, in := range a.Instances {
				out[in.PID] = in.ID + "/" + in.State
			}
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }
