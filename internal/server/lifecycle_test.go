package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// `kill -9` of one instance is recorded as an exit by SIGKILL and a
// restart, and the instance comes back under the same id with restarts ==
// 1 while the other is untouched.
func TestKill9RestartsUnderSameID(t *testing.T) {
	t.Parallel()
	g := serving(t, 2, nil)
	before, _ := instance(g, "web-1")
	other, _ := instance(g, "web-2")

	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	exit := waitEvent(t, g, 5*time.Second, "exit", "web-1", nil)
	if exit.Signal != "SIGKILL" || exit.PID != before.PID || exit.ExitCode != nil {
		t.Errorf("exit event = pid %d signal %q exit_code %v; want pid %d signal SIGKILL and no exit code\nevents:\n%s",
			exit.PID, exit.Signal, exit.ExitCode, before.PID, describeEvents(g.Events()))
	}
	if !strings.Contains(exit.Detail, "SIGKILL") {
		t.Errorf("exit detail %q does not name SIGKILL", exit.Detail)
	}
	waitEvent(t, g, 5*time.Second, "restart", "web-1", nil)

	testutil.WaitFor(t, 10*time.Second, "web-1 ready again with a new pid", func() bool {
		in, ok := instance(g, "web-1")
		return ok && in.State == "ready" && in.PID != before.PID
	})
	after, _ := instance(g, "web-1")
	if after.Restarts != 1 {
		t.Errorf("web-1 restarts = %d, want 1", after.Restarts)
	}
	if in, _ := instance(g, "web-2"); in.Restarts != 0 || in.PID != other.PID {
		t.Errorf("web-2 was disturbed: restarts %d pid %d (was %d)", in.Restarts, in.PID, other.PID)
	}
	if n := len(g.Instances("web")); n != 2 {
		t.Errorf("%d instances after the restart, want 2 (same ids)", n)
	}
	if testutil.ProcessAlive(before.PID) {
		t.Errorf("killed pid %d still alive", before.PID)
	}
	// The restarted instance serves under its old id.
	c := client(t, 5*time.Second)
	want := fmt.Sprintf("web-1 %d", after.PID)
	testutil.WaitFor(t, 5*time.Second, "the new web-1 to answer through the gateway", func() bool {
		_, body, _ := get(t, c, g.URL+"/")
		return body == want
	})
	if evs := g.Events("exit"); len(evs) != 1 {
		t.Errorf("%d exit events, want 1:\n%s", len(evs), describeEvents(evs))
	}
}

// An app that exits at once is restarted with growing delays (immediately,
// then about 1s, 2s, 4s) and gatehouse does not spin while it waits. Not
// parallel: it measures the CPU time of the whole test process.
func TestCrashLoopBacksOff(t *testing.T) {
	cfg, _ := harness.FaultApp(t, 1, "-exit-at-start", "1")
	var before syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &before); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	g := harness.Start(t, cfg)

	// Five starts: the first, then restarts after 0, 1s, 2s and 4s.
	testutil.WaitFor(t, 15*time.Second, "5 start events", func() bool { return len(g.Events("start")) >= 5 })
	elapsed := time.Since(began)
	var after syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &after); err != nil {
		t.Fatal(err)
	}
	starts := g.Events("start")
	if len(starts) > 5 {
		t.Fatalf("%d starts in %v; want 5 (crash loop is not backed off):\n%s", len(starts), elapsed, describeEvents(g.Events()))
	}
	// A gap runs from an exit to the next start: the back-off alone, not
	// the time a busy machine takes to start a process and see it exit.
	exits := g.Events("exit")
	if len(exits) < len(starts)-1 {
		t.Fatalf("%d exits before the %d-th start:\n%s", len(exits), len(starts), describeEvents(g.Events()))
	}
	var gaps []time.Duration
	for i := 1; i < len(starts); i++ {
		gaps = append(gaps, starts[i].Time.Sub(exits[i-1].Time))
	}
	t.Logf("gaps from an exit to the next start: %v (over %v)", gaps, elapsed)
	// Tolerances are generous; the shape is what matters.
	wantGaps := []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second}
	for i, w := range wantGaps {
		lo, hi := w*8/10, w+1500*time.Millisecond
		if gaps[i] < lo || gaps[i] > hi {
			t.Errorf("gap %d = %v, want about %v (between %v and %v)\nevents:\n%s", i+1, gaps[i], w, lo, hi, describeEvents(g.Events()))
		}
		if i > 0 && gaps[i] <= gaps[i-1] {
			t.Errorf("gap %d (%v) is not longer than gap %d (%v)", i+1, gaps[i], i, gaps[i-1])
		}
	}
	restarts := g.Events("restart")
	if len(restarts) < 4 {
		t.Errorf("%d restart events, want at least 4", len(restarts))
	}
	for _, e := range g.Events("exit") {
		if e.ExitCode == nil || *e.ExitCode != 1 {
			t.Errorf("exit event %q: exit_code %v, want 1", e.Detail, e.ExitCode)
			break
		}
	}
	in, _ := instance(g, "web-1")
	if in.Restarts < 4 || in.State == "ready" {
		t.Errorf("web-1 = %s with %d restarts; want not ready, >= 4 restarts", in.State, in.Restarts)
	}

	// Never spins: the whole test process (gatehouse in it) used a small
	// fraction of one CPU while the loop ran.
	cpu := tv(after.Utime) + tv(after.Stime) - tv(before.Utime) - tv(before.Stime)
	t.Logf("CPU time over %v: %v", elapsed, cpu)
	if limit := elapsed / 4; cpu > limit {
		t.Errorf("gatehouse used %v of CPU over %v of crash loop (limit %v): it spins", cpu, elapsed, limit)
	}
}

func tv(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }

// Both instances of a 2-instance app become ready and requests through the
// gateway reach both.
func TestRunTwoInstancesBothServe(t *testing.T) {
	t.Parallel()
	g := serving(t, 2, nil)

	var want []string
	for _, in := range g.Instances("web") {
		if in.PID <= 0 || in.Port <= 0 {
			t.Fatalf("ready instance without pid or port: %+v", in)
		}
		want = append(want, fmt.Sprintf("%s %d", in.ID, in.PID))
	}
	slices.Sort(want)
	if len(want) != 2 || !strings.HasPrefix(want[0], "web-1 ") || !strings.HasPrefix(want[1], "web-2 ") {
		t.Fatalf("instances = %v, want web-1 and web-2", want)
	}

	c := client(t, 5*time.Second)
	seen := answersOf(t, c, g.URL+"/", 20)
	var got []string
	for body := range seen {
		got = append(got, body)
	}
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("instances that answered (-want +got):\n%s", diff)
	}
	for body, n := range seen {
		if n < 5 {
			t.Errorf("%q answered %d of 20 sequential requests; want them spread", body, n)
		}
	}
}

// An upstreams: app (an external pool gatehouse does not run) is probed
// and balanced like instances; a dead upstream is taken out and requests
// still succeed on the other.
func TestUpstreamsProbedAndBalanced(t *testing.T) {
	t.Parallel()
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
	seen := answersOf(t, c, g.URL+"/", 20)
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

// answersOf sends n sequential GETs of url, each of which must answer
// 200, and counts the answers by body (the fault app's says which
// instance answered).
func answersOf(t *testing.T, c *http.Client, url string, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for i := range n {
		code, body, _ := get(t, c, url)
		if code != 200 {
			t.Fatalf("GET %s #%d = %d %q", url, i, code, body)
		}
		seen[body]++
	}
	return seen
}

// external is a fault app started by the test itself, outside gatehouse,
// as an upstream would be.
type external struct {
	Addr string
	PID  int
	done chan struct{}
}

// startExternal runs the fault app with PORT set and GATEHOUSE_INSTANCE
// name, waits until it listens, and kills its process group when the test
// ends.
func startExternal(t *testing.T, name string, args ...string) *external {
	t.Helper()
	cmd := exec.Command(testutil.BuildBinary(t, testutil.FaultAppPkg), args...)
	port := testutil.FreePort(t)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "GATEHOUSE_APP=ext", "GATEHOUSE_INSTANCE="+name)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e := &external{PID: cmd.Process.Pid, done: make(chan struct{})}
	listening := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s := bufio.NewScanner(out)
		for s.Scan() {
			if a, ok := strings.CutPrefix(s.Text(), "listening on "); ok {
				listening <- a
			}
		}
	}()
	go func() { wg.Wait(); cmd.Wait(); close(e.done) }()
	t.Cleanup(func() {
		syscall.Kill(-e.PID, syscall.SIGKILL)
		<-e.done
	})
	select {
	case e.Addr = <-listening:
	case <-e.done:
		t.Fatalf("external %s exited before listening", name)
	case <-time.After(10 * time.Second):
		t.Fatalf("external %s did not listen within 10s", name)
	}
	return e
}

// Kill kills the external app and waits until it is reaped.
func (e *external) Kill(t *testing.T) {
	t.Helper()
	syscall.Kill(-e.PID, syscall.SIGKILL)
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("external pid %d not reaped", e.PID)
	}
}

// A request to an app that crashes as it starts is answered, after
// hold_timeout, with a 503 that names the last exit (its instance, how
// it ended, when), not only "crashed or restarting": the crash loop's
// cause is in the exit.
func TestCrashLoopsAnswerNamesTheExit(t *testing.T) {
	t.Parallel()
	cfg, app := harness.FaultApp(t, 1, "-exit-at-start", "3")
	app.HoldTimeout = config.Duration(time.Second)
	g := harness.Start(t, cfg)
	testutil.WaitFor(t, 15*time.Second, "an exit", func() bool { return len(g.Events("exit")) >= 1 })
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(g.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "the last exit: web-1 exited with code 3") {
		t.Errorf("got %d %q; want 503 naming the last exit, web-1 exited with code 3", resp.StatusCode, body)
	}
}
