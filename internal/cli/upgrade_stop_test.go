package cli_test

import (
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A stop that comes right after an upgrade, while the old process still
// serves a request it accepted before, does not stop the app under that
// request: the new gatehouse's own drain knows only its requests, so it
// waits for the old process to finish before it stops the instances.
// The app exits at once on SIGTERM (a runtime's default), so that
// stopping it early would cut the request off.
func TestStopRightAfterAnUpgradeLetsTheOldProcessFinish(t *testing.T) {
	t.Parallel()
	r := newUpgradeRig(t, 1)
	r.writeApps(t, r.webApp(1, map[string]string{"FAULT_EXIT_ON_SIGTERM": "true"}, "2s", "30s"))
	old := r.start(t)
	r.instances(t, 1)

	c := &http.Client{Timeout: 60 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	answered := testutil.GetLater(c, "http://"+r.listen+"/sleep?d=8s")
	r.inflight(t)

	u := r.upgrade(t)
	if u.code != 0 || u.newPID == 0 {
		t.Fatalf("gatehouse upgrade: exit %d:\n%s", u.code, u.out.String())
	}
	if err := syscall.Kill(u.newPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-answered:
		if a.Err != nil || a.Status != http.StatusOK || a.Body != "slept 8s" {
			t.Errorf("the request the old gatehouse (pid %d) served as the new one (pid %d) stopped: %d %q, %v; want it answered",
				old, u.newPID, a.Status, a.Body, a.Err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the request was not answered within 60s")
	}
	testutil.WaitFor(t, 60*time.Second, "both gatehouses to exit", func() bool { return len(r.gatehouses()) == 0 })
}

// Two upgrades in a row, then a stop, while the first old process still
// serves a request it accepted before them: the process stopped took
// over from the second gatehouse, which had no request of its own and
// went at once, but the first still serves on the same instances. The
// stop must not stop the app under that request either.
func TestStopAfterTwoUpgradesLetsTheFirstOldProcessFinish(t *testing.T) {
	t.Parallel()
	r := newUpgradeRig(t, 1)
	r.writeApps(t, r.webApp(1, map[string]string{"FAULT_EXIT_ON_SIGTERM": "true"}, "2s", "30s"))
	first := r.start(t)
	r.instances(t, 1)

	c := &http.Client{Timeout: 60 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	answered := testutil.GetLater(c, "http://"+r.listen+"/sleep?d=12s")
	r.inflight(t)

	u := r.upgrade(t)
	if u.code != 0 || u.newPID == 0 {
		t.Fatalf("the first gatehouse upgrade: exit %d:\n%s", u.code, u.out.String())
	}
	second := u.newPID
	// The admin API is the second gatehouse's once the first has let
	// go of its listener: an upgrade the first still answered is refused.
	var last *upgradeRun
	testutil.WaitFor(t, 30*time.Second, "the second gatehouse to upgrade", func() bool {
		last = r.upgrade(t)
		return last.code == 0 && last.newPID != 0 && last.newPID != second
	})
	if !testutil.ProcessAlive(first) {
		t.Fatalf("the first gatehouse (pid %d) exited before its request was answered", first)
	}
	if err := syscall.Kill(last.newPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case a := <-answered:
		if a.Err != nil || a.Status != http.StatusOK || a.Body != "slept 12s" {
			t.Errorf("the request the first gatehouse (pid %d) served as the third (pid %d) stopped: %d %q, %v; want it answered",
				first, last.newPID, a.Status, a.Body, a.Err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the request was not answered within 60s")
	}
	testutil.WaitFor(t, 60*time.Second, "every gatehouse to exit", func() bool { return len(r.gatehouses()) == 0 })
}

// The wait for the old process shares the stop's drain bound: the old
// one's requests began before the stop, so they end within stop_timeout
// of it, and a wait past that protects none of them while it pushes the
// stop past the time systemd or Kubernetes allow it (shutdown_delay and
// three stop_timeouts, docs/kubernetes.md). An old process that never
// exits (stopped here with SIGSTOP) does not make the new one, whose own
// drain took the whole stop_timeout, wait one more before it stops the
// apps.
func TestStopAfterAnUpgradeWaitsForAnOldProcessWithinTheDrainBound(t *testing.T) {
	t.Parallel()
	const stopTimeout = 5 * time.Second
	r := newUpgradeRig(t, 1)
	r.writeApps(t, r.webApp(1, map[string]string{"FAULT_EXIT_ON_SIGTERM": "true"}, "2s", stopTimeout.String()))
	old := r.start(t)
	r.instances(t, 1)
	// Requests that outlast every drain: one to each gatehouse, each
	// seen in flight by the gatehouse that answers the admin API.
	c := &http.Client{Timeout: 90 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	inFlight := func() {
		t.Helper()
		testutil.GetLater(c, "http://"+r.listen+"/sleep?d=60s")
		r.inflight(t)
	}
	inFlight()
	u := r.upgrade(t)
	if u.code != 0 || u.newPID == 0 {
		t.Fatalf("gatehouse upgrade: exit %d:\n%s", u.code, u.out.String())
	}
	if err := syscall.Kill(old, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// Let it go at the end, to exit rather than wait for cleanup's
	// SIGKILL.
	defer syscall.Kill(old, syscall.SIGCONT)
	inFlight()

	stopped := time.Now()
	if err := syscall.Kill(u.newPID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var appsStopped time.Time
	testutil.WaitFor(t, 60*time.Second, "the new gatehouse to stop the app", func() bool {
		for _, e := range r.events(t) {
			if e.Type == telemetry.EventDrain && e.Instance == "web-1" && e.Time.After(stopped) {
				appsStopped = e.Time
				return true
			}
		}
		return false
	})
	// The drain's stop_timeout, and the stop's steps between it and the
	// apps' (a second at most here), but not a second stop_timeout.
	if took := appsStopped.Sub(stopped); took >= 2*stopTimeout {
		t.Errorf("the new gatehouse began to stop the app %s after its stop, want less than two stop_timeouts (%s): its wait for the old one outlasted its drain's bound",
			took.Round(time.Millisecond), 2*stopTimeout)
	}
}
