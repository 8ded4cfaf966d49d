package server

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// When a component fails on its own (here the admin listener, closed under
// the server), Run runs the shutdown sequence and returns that component's
// error, without waiting for a signal; the app's processes are stopped and
// no goroutine is left behind.
func TestRunReturnsWhenAdminListenerFails(t *testing.T) {
	before := goleak.IgnoreCurrent()
	bin := testutil.BuildBinary(t, testutil.FaultAppPkg)
	cfg := config.Default()
	cfg.Listen, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	app := config.NewApp("web")
	app.Command = config.Command{bin}
	app.Instances = 1
	app.Routes = config.PlainRoutes("/")
	app.Health.Path = "/healthz"
	app.Health.Interval = config.Duration(200 * time.Millisecond)
	app.Health.Timeout = config.Duration(time.Second)
	app.StartTimeout = config.Duration(10 * time.Second)
	app.StopTimeout = config.Duration(3 * time.Second)
	cfg.Apps = map[string]*config.App{"web": app}
	cfg.Order = []string{"web"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	var pid int
	testutil.WaitFor(t, 15*time.Second, "web-1 ready", func() bool {
		for _, a := range s.sup.Status() {
			for _, in := range a.Instances {
				if in.State == "ready" {
					pid = in.PID
					return true
				}
			}
		}
		return false
	})

	s.adminLn.Close() // the admin listener fails under the server

	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "admin listener") {
			t.Fatalf("Run = %v; want an error naming the admin listener", err)
		}
		t.Logf("Run returned: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of the admin listener failing")
	}
	if testutil.ProcessAlive(pid) {
		t.Errorf("instance pid %d still alive after Run returned", pid)
	}
	// The supervisor stopped the instance: its stop event was written.
	stopped := false
	for _, ev := range s.events.Since(time.Time{}) {
		if ev.Type == "stop" && ev.Instance == "web-1" {
			stopped = true
		}
	}
	if !stopped {
		t.Errorf("no stop event for web-1: the shutdown sequence skipped the supervisor")
	}
	goleak.VerifyNone(t, before)
}
