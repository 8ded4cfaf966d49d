package server_test

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// A reload that raises an app's stop_timeout (which takes no new
// process) raises the bound of the stop's drain too: a request that the
// new stop_timeout leaves time for is answered, not cut off at the
// stop_timeout gatehouse started with.
func TestDrainIsBoundedByTheReloadedStopTimeout(t *testing.T) {
	t.Parallel()
	f := newConfigFile(t)
	app := func(stopTimeout string) string {
		return fmt.Sprintf("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\ndata_dir: %s\napps:\n  web:\n    command: [%s]\n    health: {path: /healthz}\n    stop_timeout: %s\n    request_timeout: 30s\n",
			f.dir, f.bin, stopTimeout)
	}
	write := func(yaml string) {
		if err := os.WriteFile(f.path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(app("1s"))
	cfg, err := config.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 20*time.Second)
	write(app("20s"))
	for _, s := range reload(t, g, "") {
		if strings.Contains(s, "new gatehouse process") {
			t.Fatalf("a stop_timeout change took a new process: %q", s)
		}
	}

	c := client(t, 30*time.Second)
	answered := testutil.GetLater(c, g.URL+"/sleep?d=4s")
	testutil.WaitFor(t, 10*time.Second, "the request in flight", func() bool {
		for _, in := range g.Instances("web") {
			if in.Inflight > 0 {
				return true
			}
		}
		return false
	})
	g.Stop(t)
	a := <-answered
	if a.Err != nil || a.Status != http.StatusOK || a.Body != "slept 4s" {
		t.Errorf("a 4s request in flight as gatehouse stopped, with stop_timeout reloaded from 1s to 20s: %d %q, %v; want it answered", a.Status, a.Body, a.Err)
	}
}
