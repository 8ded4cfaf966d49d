package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

const gatehousePkg = "github.com/gatehouse/gatehouse/cmd/gatehouse"

// gatehouse runs the gatehouse binary to completion in dir (the test's
// working directory when ""), bounded by 20s, and returns its output and
// exit code.
func gatehouse(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, testutil.BuildBinary(t, gatehousePkg), args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("gatehouse %v did not finish within 20s\nstdout:\n%s\nstderr:\n%s", args, &out, &errb)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("gatehouse %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// syncBuffer is a bytes.Buffer safe to read while a process writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// path, if set, is a file the process writes instead.
	path string
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	if s.path != "" {
		b, _ := os.ReadFile(s.path)
		return string(b)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// running is a gatehouse binary started in the background.
type running struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	// kill lists process ids whose groups cleanup kills if the test left
	// them (instances), and pids it kills (grandchildren).
	mu      sync.Mutex
	groups  []int
	singles []int
}

// startGatehouse starts `gatehouse args...` in dir in its own process
// group. Cleanup kills it, and any process the test registered, if they
// are still there.
func startGatehouse(t *testing.T, dir string, args ...string) *running {
	t.Helper()
	return startGatehouseAt(t, testutil.BuildBinary(t, gatehousePkg), dir, false, args...)
}

// startGatehouseAt is startGatehouse with the binary at bin. With files,
// its output goes to files in dir rather than pipes: the successors of an
// upgrade write there too, after it exited (into a pipe whose reader is
// gone, a write would kill them with SIGPIPE).
func startGatehouseAt(t *testing.T, bin, dir string, files bool, args ...string) *running {
	t.Helper()
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Dir = dir
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	if files {
		for _, o := range []struct {
			buf *syncBuffer
			w   *io.Writer
		}{{r.stdout, &r.cmd.Stdout}, {r.stderr, &r.cmd.Stderr}} {
			f, err := os.CreateTemp(dir, "gatehouse-output-")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close() // the process has its own descriptor
			o.buf.path, *o.w = f.Name(), f
		}
	}
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.cmd.WaitDelay = 2 * time.Second
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
			<-r.done
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, pid := range r.groups {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
		for _, pid := range r.singles {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("gatehouse stdout:\n%s\ngatehouse stderr:\n%s", r.stdout, r.stderr)
		}
	})
	return r
}

// track registers processes for cleanup: instance pids (killed by group)
// and single pids.
func (r *running) track(groups, singles []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.groups = append(r.groups, groups...)
	r.singles = append(r.singles, singles...)
}

// wait waits up to d for gatehouse to exit and returns its exit code.
func (r *running) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("gatehouse did not exit within %v\nstderr:\n%s", d, r.stderr)
		return -1
	}
}

// status fetches GET /api/status from adminURL, nil while it is not
// answering.
func status(c *http.Client, adminURL string) *admin.StatusResponse {
	resp, err := c.Get(adminURL + "/api/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var st admin.StatusResponse
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return nil
	}
	return &st
}

// waitReady waits until app has n ready instances behind adminURL.
func waitReady(t *testing.T, c *http.Client, adminURL, app string, n int, r *running) {
	t.Helper()
	testutil.WaitFor(t, 15*time.Second, "ready instances via "+adminURL, func() bool {
		select {
		case <-r.done:
			t.Fatalf("gatehouse exited early (%v)\nstderr:\n%s", r.cmd.ProcessState, r.stderr)
		default:
		}
		st := status(c, adminURL)
		if st == nil {
			return false
		}
		ready := 0
		for _, a := range st.Apps {
			for _, in := range a.Instances {
				if a.Name == app && in.State == "ready" {
					ready++
				}
			}
		}
		return ready == n
	})
}

// httpClient returns a client whose idle connections close with the test.
func httpClient(t *testing.T, timeout time.Duration) *http.Client {
	t.Helper()
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}
