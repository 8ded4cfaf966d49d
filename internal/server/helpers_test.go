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

	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// client returns a gateway client whose idle connections are closed when
// the test ends.
func client(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	c := harness.Client(timeout)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// get fetches url and returns the status, body and headers.
func get(t *testing.T, c *http.Client, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp.StatusCode, string(body), resp.Header
}

// instance returns the status of instance id, and whether it exists.
func instance(g *harness.Gatehouse, id string) (supervisor.InstanceStatus, bool) {
	for _, in := range g.Instances("web") {
		if in.ID == id {
			return in, true
		}
	}
	return supervisor.InstanceStatus{}, false
}

// waitEvent waits for an event of type typ for instance id (any when "")
// that match accepts (nil: any), and returns the first.
func waitEvent(t *testing.T, g *harness.Gatehouse, timeout time.Duration, typ, id string, match func(telemetry.Event) bool) telemetry.Event {
	t.Helper()
	var found telemetry.Event
	testutil.WaitFor(t, timeout, fmt.Sprintf("%q event of %q", typ, id), func() bool {
		for _, e := range g.Events(typ) {
			if (id == "" || e.Instance == id) && (match == nil || match(e)) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}

// describeEvents formats events for failure messages.
func describeEvents(evs []telemetry.Event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s %s %s pid=%d sig=%s: %s\n", e.Time.Format("15:04:05.000"), e.Instance, e.Type, e.PID, e.Signal, e.Detail)
	}
	return b.String()
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

// percentile returns the p-th percentile (0..1) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}
