package procdump

import (
	"context"
	"errors"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/reaper"
)

// A tool's exit status is its caller's even while gatehouse, as PID 1,
// reaps every zombie child nobody waits for: here two reapers scan as
// fast as they can, where PID 1's runs on every SIGCHLD. A tool the
// reaper took first would fail with ECHILD ("waitid: no child
// processes") rather than its own exit status; that race is lost about
// once in 30 to 60 runs, so many runs show it. They stop after 3 s: the
// spinning takes two cores from the rest of the suite while it lasts.
func TestToolExitStatusSurvivesTheReaper(t *testing.T) {
	if testing.Short() {
		t.Skip("spins two reapers")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				reaper.Reap()
			}
		})
	}
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; i < 300 && time.Now().Before(deadline); i++ {
		_, err := runTool(context.Background(), &target{}, Options{}, nil, "false")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("run %d of false: %v; want its exit status 1", i+1, err)
		}
	}
}
