package server_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// An upstreams: app (an external pool gatehouse does not run) is probed
// and balanced like instances; a dead upstream is taken out and requests
// still succeed on the other.
func TestUpstreamsProbedAndBalanced(t *testing.T) {
	a := startExternal(t, "ext-a")
	b := startExternal(t, "ext-b")
	cfg, app := harness.FaultApp(t, 1)
	app.Command = nil
	app.Upstreams = []string{a.Addr, b.Addr}
	app.Health.Interval = config.Duration(200 * time.Millisecond)
	app.Health.UnhealthyThreshold = 1
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 2, 10*time.Second)

	var addrs []string
	for _, in := range g.Instances("web") {
		addrs = append(addrs, in.Upstream)
		if !strings.HasPrefix(in.Health, "200 OK in ") {
			t.Errorf("%s health = %q, want the probe's \"200 OK in ...\"", in.ID, in.Health)
		}
		if in.PID != 0 {
			t.Errorf("%s: external upstream with pid %d", in.ID, in.PID)
		}
	}
	slices.Sort(addrs)
	wantAddrs := []string{a.Addr, b.Addr}
	slices.Sort(wantAddrs)
	if diff := cmp.Diff(wantAddrs, addrs); diff != "" {
		t.Errorf("upstream addresses in status (-want +got):\n%s", diff)
	}

	c := client(t, 5*time.Second)
	seen := map[string]int{}
	for i := 0; i < 20; i++ {
		code, body, _ := get(t, c, g.URL+"/")
		if code != 200 {
			t.Fatalf("GET / = %d %q", code, body)
		}
		seen[body]++
	}
	want := map[string]int{fmt.Sprintf("ext-a %d", a.PID): 10, fmt.Sprintf("ext-b %d", b.PID): 10}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("answers per upstream over 20 sequential requests (-want +got):\n%s", diff)
	}

	// Kill ext-b: the probes notice, and every request goes to ext-a.
	b.Kill(t)
	testutil.WaitFor(t, 5*time.Second, "the dead upstream to be probed out of rotation", func() bool {
		for _, in := range g.Instances("web") {
			if in.Upstream == b.Addr {
				return in.State != "ready" && strings.Contains(in.Health, "connection refused")
			}
		}
		return false
	})
	for i := 0; i < 10; i++ {
		code, body, h := get(t, c, g.URL+"/")
		if code != 200 || body != fmt.Sprintf("ext-a %d", a.PID) {
			t.Fatalf("GET / with ext-b down = %d %q (cause %q), want 200 from ext-a", code, body, h.Get("Gatehouse-Cause"))
		}
	}
}
