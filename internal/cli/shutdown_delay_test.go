package cli_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// SIGTERM with shutdown_delay: 2s. /readyz answers 503 within 100 ms;
// requests keep succeeding for the delay; then gatehouse drains and exits
// 0. Clients that stop sending when readiness fails (as a load balancer
// following /readyz does) see no failed request, on keep-alive connections
// throughout.
func TestSIGTERMWithShutdownDelay(t *testing.T) {
	f := newUpgradeFixture(t, nil, "1s", "shutdown_delay: 2s")
	var (
		notReadyAt atomic.Int64 // unix nanos of the first failed /readyz
		termAt     atomic.Int64
		mu         sync.Mutex
		ok         int
		failures   []string
		lastLate   time.Duration // the latest success of the stubborn client
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, args...))
	}
	send := func(c *http.Client, i int) error {
		var resp *http.Response
		var err error
		if i%2 == 0 {
			resp, err = c.Get("http://" + f.listen + "/pid")
		} else {
			resp, err = c.Post("http://"+f.listen+"/echo", "text/plain", strings.NewReader(fmt.Sprintf("body %d", i)))
		}
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d (cause %q)", resp.StatusCode, resp.Header.Get("Gatehouse-Cause"))
		}
		return nil
	}
	var wg sync.WaitGroup
	// The readiness watcher: a load balancer's probe, every 10 ms.
	wg.Go(func() {
		c := httpClient(t, 2*time.Second)
		for i := 0; i < 3000 && notReadyAt.Load() == 0; i++ {
			resp, err := c.Get(f.adminURL + "/readyz")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				notReadyAt.Store(time.Now().UnixNano())
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	// Eight clients that stop when readiness fails.
	for w := range 8 {
		wg.Go(func() {
			c := httpClient(t, 10*time.Second)
			for i := w; i < 20000 && notReadyAt.Load() == 0; i += 8 {
				if err := send(c, i); err != nil {
					fail("client %d request %d: %v", w, i, err)
					return
				}
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	// One stubborn client that goes on for 1.8 s after SIGTERM: inside
	// the delay, every request is still served.
	wg.Go(func() {
		c := httpClient(t, 10*time.Second)
		for i := 0; i < 20000; i++ {
			if at := termAt.Load(); at != 0 && time.Since(time.Unix(0, at)) > 1800*time.Millisecond {
				return
			}
			if err := send(c, i); err != nil {
				fail("stubborn client request %d: %v", i, err)
				return
			}
			if at := termAt.Load(); at != 0 {
				mu.Lock()
				lastLate = time.Since(time.Unix(0, at))
				mu.Unlock()
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	testutil.WaitFor(t, 20*time.Second, "some load before SIGTERM", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ok >= 200
	})
	termAt.Store(time.Now().UnixNano())
	if err := f.g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	code := f.g.wait(t, 30*time.Second)
	stoppedAfter := time.Since(time.Unix(0, termAt.Load()))

	if code != 0 {
		t.Errorf("gatehouse exited %d, want 0", code)
	}
	if n := notReadyAt.Load(); n == 0 {
		t.Errorf("/readyz never failed")
	} else if d := time.Duration(n - termAt.Load()); d > 100*time.Millisecond {
		t.Errorf("/readyz failed %v after SIGTERM, want within 100 ms", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Errorf("%d failed requests (of %d):\n%s", len(failures), ok, strings.Join(failures, "\n"))
	}
	if lastLate < 1500*time.Millisecond {
		t.Errorf("the last request served after SIGTERM was %v in, want about 1.8 s (the delay is 2 s)", lastLate)
	}
	if stoppedAfter < 2*time.Second {
		t.Errorf("gatehouse exited %v after SIGTERM, before its shutdown_delay of 2s", stoppedAfter)
	}
	t.Logf("%d requests; /readyz failed %v after SIGTERM; served until %v; exited after %v",
		ok, time.Duration(notReadyAt.Load()-termAt.Load()), lastLate, stoppedAfter)
}

// SIGHUP (a reload, say from logrotate) or SIGUSR2 (an upgrade) that
// comes while gatehouse stops, in its shutdown_delay, is ignored: it must
// not kill gatehouse with the signal's default action, which would skip
// the drain and leave the app running without a supervisor.
func TestSignalsWhileStoppingAreIgnored(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR2} {
		t.Run(sig.String(), func(t *testing.T) {
			f := newUpgradeFixture(t, nil, "1s", "shutdown_delay: 2s")
			pid := f.instancePID(t)
			f.g.track([]int{pid}, nil)
			if err := f.g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 5*time.Second, "/readyz to fail", func() bool {
				resp, err := f.c.Get(f.adminURL + "/readyz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusServiceUnavailable
			})
			// Well into the delay: whatever handled the signal before the
			// stop has had time to stop handling it.
			time.Sleep(500 * time.Millisecond)
			if err := f.g.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			if code := f.g.wait(t, 30*time.Second); code != 0 {
				t.Errorf("gatehouse exited %d after %v in its shutdown_delay, want 0 (%v)", code, sig, f.g.cmd.ProcessState)
			}
			if !strings.Contains(f.g.stderr.String(), "gatehouse stopped") {
				t.Errorf("no clean stop in gatehouse's log:\n%s", f.g.stderr)
			}
			if syscall.Kill(pid, 0) == nil {
				t.Errorf("the app (pid %d) still runs after gatehouse exited", pid)
			}
		})
	}
}

// A second SIGTERM (or Ctrl-C) during shutdown_delay skips the rest of
// it: gatehouse drains and exits at once, not 30 s later.
func TestSecondSignalSkipsTheShutdownDelay(t *testing.T) {
	f := newUpgradeFixture(t, nil, "1s", "shutdown_delay: 30s")
	c := httpClient(t, 2*time.Second)
	start := time.Now()
	if err := f.g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "/readyz to fail", func() bool {
		resp, err := c.Get(f.adminURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	if !answers(c, f.listen) {
		t.Errorf("a request during the delay was not served")
	}
	if err := f.g.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := f.g.wait(t, 20*time.Second); code != 0 {
		t.Errorf("gatehouse exited %d, want 0", code)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("gatehouse took %v to stop after a second signal, want well under its 30 s delay", took)
	}
	if !strings.Contains(f.g.stderr.String(), "second signal") {
		t.Errorf("gatehouse did not say why it cut the delay short:\n%s", f.g.stderr)
	}
}

// A gatehouse drained for maintenance stays drained through an upgrade
// (drain, upgrade, undrain): the new process's /readyz fails until
// undrain.
func TestDrainedGatehouseStaysDrainedThroughAnUpgrade(t *testing.T) {
	f := newUpgradeFixture(t, nil, "1s")
	if out, errOut, code := gatehouse(t, f.dir, "drain", "--admin", f.adminURL); code != 0 {
		t.Fatalf("gatehouse drain: exit %d\n%s%s", code, out, errOut)
	}
	if r := waitOp(t, f.upgrade(t), 60*time.Second, "the upgrade"); r.code != 0 {
		t.Fatalf("upgrade exited %d:\n%s", r.code, r.out)
	}
	if code := f.g.wait(t, 30*time.Second); code != 0 {
		t.Errorf("the old gatehouse exited %d, want 0", code)
	}
	c := httpClient(t, 5*time.Second)
	readyz := func() (int, string) {
		resp, err := c.Get(f.adminURL + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || body != "draining" {
		t.Errorf("the new gatehouse's /readyz = %d %q, want 503 draining", code, body)
	}
	if out, errOut, code := gatehouse(t, f.dir, "undrain", "--admin", f.adminURL); code != 0 {
		t.Fatalf("gatehouse undrain: exit %d\n%s%s", code, out, errOut)
	}
	testutil.WaitFor(t, 10*time.Second, "/readyz to pass after undrain", func() bool {
		code, _ := readyz()
		return code == http.StatusOK
	})
	// The variable went no further than the new gatehouse: not to the app.
	resp, err := c.Get("http://" + f.listen + "/env")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "GATEHOUSE_DRAINED") {
		t.Errorf("the app's environment has GATEHOUSE_DRAINED")
	}
}
