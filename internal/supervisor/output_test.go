package supervisor_test

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// An exit event's output is the last output of the process that exited,
// never of an earlier process of the same instance. Here the first process
// dies on POST /crash after printing a panic; its successor is killed with
// SIGKILL after printing only its start-up line: the second exit must not
// show the first process's panic.
func TestExitOutputIsThatProcesssOwn(t *testing.T) {
	g := startWeb(t, 1, nil)
	first := g.Instances("web")[0].PID
	c := harness.Client(10 * time.Second)
	defer c.CloseIdleConnections()
	if resp, err := c.Post(g.URL+"/crash", "text/plain", strings.NewReader("x")); err == nil {
		resp.Body.Close()
	}
	testutil.WaitFor(t, 10*time.Second, "the first exit", func() bool { return len(g.Events(telemetry.EventExit)) >= 1 })
	testutil.WaitFor(t, 15*time.Second, "a second process, ready", func() bool {
		ins := g.Instances("web")
		return len(ins) == 1 && ins[0].State == "ready" && ins[0].PID != first && ins[0].PID != 0
	})
	second := g.Instances("web")[0].PID
	if err := syscall.Kill(second, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", second, err)
	}
	testutil.WaitFor(t, 10*time.Second, "the second exit", func() bool { return len(g.Events(telemetry.EventExit)) >= 2 })
	exits := g.Events(telemetry.EventExit)
	if exits[0].PID != first || exits[1].PID != second {
		t.Fatalf("exits of pids %d, %d; want %d, %d", exits[0].PID, exits[1].PID, first, second)
	}
	if !slices.ContainsFunc(exits[0].Output, func(l string) bool { return strings.Contains(l, "panic: crash requested on /crash") }) {
		t.Errorf("first exit (pid %d, POST /crash): output %q lacks the panic it printed", first, exits[0].Output)
	}
	for _, l := range exits[1].Output {
		if strings.Contains(l, "panic") || strings.Contains(l, fmt.Sprintf("[%d]", first)) {
			t.Errorf("second exit (pid %d, SIGKILL) shows a line of the first process (pid %d): %q\nall: %q", second, first, l, exits[1].Output)
		}
	}
	if len(exits[1].Output) == 0 || !strings.HasPrefix(exits[1].Output[len(exits[1].Output)-1], "listening on ") {
		t.Errorf("second exit (pid %d): output %q; want its own start-up line last", second, exits[1].Output)
	}
}

// A process's last words printed without a newline belong to its own exit,
// as a line, and are not glued to the next process's first line.
func TestExitOutputKeepsUnterminatedLastLine(t *testing.T) {
	cfg, app := harness.FaultApp(t, 1)
	tune(app)
	app.HoldTimeout = config.Duration(time.Second)
	app.Command = config.Command{"sh", "-c", `echo "started $$"; printf "fatal: dying without a newline ($$)"; exit 4`}
	g := harness.Start(t, cfg)
	testutil.WaitFor(t, 10*time.Second, "2 exits", func() bool { return len(g.Events(telemetry.EventExit)) >= 2 })
	for _, e := range g.Events(telemetry.EventExit)[:2] {
		want := []string{fmt.Sprintf("started %d", e.PID), fmt.Sprintf("fatal: dying without a newline (%d)", e.PID)}
		if !slices.Equal(e.Output, want) {
			t.Errorf("exit of pid %d: output %q; want %q", e.PID, e.Output, want)
		}
	}
}
