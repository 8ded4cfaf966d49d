package admin_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// screenshotEnv names the PNG TestDashboardScreenshot writes; unset, the
// test skips. The README's picture is made with
//
//	GATEHOUSE_SCREENSHOT=$PWD/docs/dashboard.png go test -run TestDashboardScreenshot -v ./internal/admin
const screenshotEnv = "GATEHOUSE_SCREENSHOT"

// screenshotLoad is how long the demo gets traffic before the picture:
// long enough for the charts (five minutes wide) to have a shape.
const screenshotLoad = 90 * time.Second

// TestDashboardScreenshot runs the bundled demo app (two instances)
// behind gatehouse, sends it a mix of fast, slow and failing requests
// with one crash, and saves the dashboard as a full-page PNG 1280 pixels
// wide.
func TestDashboardScreenshot(t *testing.T) {
	t.Parallel()
	out := os.Getenv(screenshotEnv)
	if out == "" {
		t.Skipf("set %s to the PNG to write", screenshotEnv)
	}
	cfg := config.Default()
	cfg.Listen, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.SampleInterval = config.Duration(time.Second)
	app := config.NewApp("demo")
	// As examples/demo/gatehouse.yaml runs it, so that the events say
	// "started ./demo", not the test binary's path.
	app.Dir = t.TempDir()
	copyFile(t, testutil.BuildBinary(t, "github.com/gatehouse/gatehouse/examples/demo"), filepath.Join(app.Dir, "demo"))
	app.Command = config.Command{"./demo"}
	app.Instances = 2
	app.Routes = config.PlainRoutes("/")
	app.Health.Path = "/healthz"
	app.Health.Interval = config.Duration(time.Second)
	app.StartTimeout = config.Duration(10 * time.Second)
	app.StopTimeout = config.Duration(5 * time.Second)
	cfg.Apps = map[string]*config.App{"demo": app}
	cfg.Order = []string{"demo"}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "demo", 2, 30*time.Second)

	ctx := browser(t, screenshotLoad+2*time.Minute)
	openDashboard(t, ctx, g.AdminURL)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	end := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(end)
	c := client(t)
	send := func(method, path string) {
		req, _ := http.NewRequest(method, g.URL+path, strings.NewReader(""))
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}
	// Two steady clients of a page that takes 5 to 60 ms, a third in the
	// middle third only; an app error now and then, a burst of them
	// later, and one crash.
	steady := func(w int) func() {
		return func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if w == 0 && i%120 == 119 {
					send(http.MethodGet, "/error")
					continue
				}
				send(http.MethodGet, fmt.Sprintf("/slow?d=%dms", 5+rand.IntN(55)))
			}
		}
	}
	wg.Go(steady(0))
	wg.Go(steady(1))
	wg.Go(func() {
		select {
		case <-time.After(screenshotLoad / 3):
		case <-stop:
			return
		}
		for until := time.Now().Add(screenshotLoad / 3); time.Now().Before(until); {
			select {
			case <-stop:
				return
			default:
			}
			send(http.MethodGet, fmt.Sprintf("/slow?d=%dms", 20+rand.IntN(100)))
		}
	})
	phase := func(f float64) { time.Sleep(time.Duration(f * float64(screenshotLoad))) }
	phase(0.4)
	send(http.MethodPost, "/crash") // not retried: one instance exits
	send(http.MethodGet, "/leak?mb=20")
	phase(0.25)
	for range 30 {
		send(http.MethodGet, "/error")
	}
	phase(0.35)
	waitJS(t, ctx, liveWait, "the crash in the timeline", `document.querySelector('#events li[data-type="exit"]')`, chartsDiagnosis)
	png := get(t, ctx, "take the screenshot", chromedp.FullScreenshot(100))
	end()
	if err := os.WriteFile(out, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d KiB)", out, len(png)>>10)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err == nil {
		err = os.WriteFile(to, b, 0o755)
	}
	if err != nil {
		t.Fatalf("copy %s: %v", from, err)
	}
}
