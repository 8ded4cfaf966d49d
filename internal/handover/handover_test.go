package handover_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/handover"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// The test binary is its own successor: started with childEnv set, it
// runs child (one of the modes below) instead of the tests, the way
// os/exec's tests use GO_WANT_HELPER_PROCESS.
const (
	childEnv = "HANDOVER_TEST_CHILD"
	addrEnv  = "HANDOVER_TEST_ADDR"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	if role, ok := os.LookupEnv(roleEnv); ok {
		os.Exit(successor(role))
	}
	if role, ok := os.LookupEnv(goneRoleEnv); ok {
		os.Exit(goneRole(role))
	}
	goleak.VerifyTestMain(m)
}

// wait bounds every wait for the child: generous, for a busy machine.
const wait = 10 * time.Second

// report is what the "serve" child found, as it writes it on stdout
// before it says it is ready.
type report struct {
	// NoCloexecBefore and After are its descriptors above 2 without
	// close-on-exec, before and after FromEnv.
	NoCloexecBefore, NoCloexecAfter []int
	// EnvAfter is Env after FromEnv.
	EnvAfter string
	Parent   int
	// Listener's ok for another address, an unknown key, the right
	// address, and the right one again.
	WrongAddr, UnknownKey, Right, Again bool
	RightErr                            string
	// ClosedByClose is how many descriptors Close closed.
	ClosedByClose int
}

func child(mode string) int {
	switch mode {
	case "exit3":
		return 3
	case "killed":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Hour)
		return 0
	}
	var rep report
	rep.NoCloexecBefore = noCloexec()
	in, err := handover.FromEnv()
	if err != nil || in == nil {
		fmt.Fprintf(os.Stderr, "FromEnv: %v, %v\n", in, err)
		return 2
	}
	switch mode {
	case "fail":
		in.Fail(errors.New("config: bad\nport"))
		time.Sleep(time.Hour)
	case "silent":
		time.Sleep(time.Hour)
	case "hangup":
		// The channel is fd 3 (see Start); close it without a word.
		syscall.Close(3)
		time.Sleep(time.Hour)
	case "serve":
		return serve(in, rep)
	}
	return 2
}

func serve(in *handover.Inherited, rep report) int {
	rep.NoCloexecAfter = noCloexec()
	rep.EnvAfter = os.Getenv(handover.Env)
	rep.Parent = in.Parent()
	addr := os.Getenv(addrEnv)
	_, rep.WrongAddr, _ = in.Listener("listen", "127.0.0.1:1")
	_, rep.UnknownKey, _ = in.Listener("no such key", addr)
	ln, ok, err := in.Listener("listen", addr)
	rep.Right = ok
	if err != nil {
		rep.RightErr = err.Error()
	}
	_, rep.Again, _ = in.Listener("listen", addr)
	before := len(fds())
	in.Close()
	rep.ClosedByClose = before - len(fds())
	if ln != nil {
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "child %d", os.Getpid())
		}))
	}
	b, _ := json.Marshal(rep)
	fmt.Printf("%s\n", b)
	if err := in.Ready(); err != nil {
		fmt.Printf("ready: %v\n", err)
	}
	fmt.Printf("ready again: %v\n", in.Ready())
	time.Sleep(time.Hour)
	return 0
}

// fds lists this process's open descriptors.
func fds() []int {
	ents, _ := os.ReadDir("/proc/self/fd")
	var out []int
	for _, e := range ents {
		n, _ := strconv.Atoi(e.Name())
		// The directory ReadDir reads is closed again.
		if _, err := unix.FcntlInt(uintptr(n), unix.F_GETFD, 0); err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// noCloexec lists the descriptors above 2 that a process started now
// would inherit.
func noCloexec() []int {
	var out []int
	for _, fd := range fds() {
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); fd > 2 && err == nil && flags&unix.FD_CLOEXEC == 0 {
			out = append(out, fd)
		}
	}
	return out
}

// startChild starts the test binary as a successor in mode, giving it
// lns, with its stdout on the returned pipe. The child is killed, if
// still running, when the test ends, and waited for until reaped (by
// Start's own goroutine).
func startChild(t *testing.T, mode string, lns []handover.Listener, env ...string) (*handover.Successor, *bufio.Reader) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// A stale Env, as a successor that upgrades again would pass on: Start
	// must replace it.
	env = append(append(os.Environ(), handover.Env+"=stale", childEnv+"="+mode), env...)
	succ, err := handover.Start(exe, nil, env, lns, w, os.Stderr)
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pid := succ.PID()
		syscall.Kill(pid, syscall.SIGKILL)
		testutil.WaitFor(t, wait, "the successor to be reaped", func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH })
		r.Close()
	})
	r.SetReadDeadline(time.Now().Add(wait))
	return succ, bufio.NewReader(r)
}

func listen(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// passedOn lists this process's descriptors above 2 without
// close-on-exec: inherited from whatever started the tests, every child
// gets them, whatever Start does.
func passedOn() []int { return noCloexec() }

// The successor serves on the sockets it was given, for the addresses
// they were bound for, and takes over the connections that were waiting
// in the accept queue: once the old process closed its listener, clients
// still connect and get the new process's answer.
func TestHandOverListeners(t *testing.T) {
	ln, spare := listen(t), listen(t)
	addr := ln.Addr().String()
	// A client that connected before the handover, still in the queue:
	// nobody accepts until the successor does.
	early, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer early.Close()
	inherited := passedOn()
	succ, out := startChild(t, "serve", []handover.Listener{
		{Key: "listen", Addr: addr, Ln: ln}, {Key: "spare", Addr: spare.Addr().String(), Ln: spare}}, addrEnv+"="+addr)
	if err := awaitReady(t, succ, wait); err != nil {
		t.Fatalf("AwaitReady: %v", err)
	}
	ln.Close()
	spare.Close()

	line, err := out.ReadString('\n')
	if err != nil {
		t.Fatalf("child's report: %v (%q)", err, line)
	}
	var got report
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		t.Fatalf("child's report %q: %v", line, err)
	}
	want := report{
		// The channel (3) and the two sockets (4, 5), then none: FromEnv
		// sets close-on-exec on all it inherited.
		NoCloexecBefore: sortedUnion([]int{3, 4, 5}, inherited),
		NoCloexecAfter:  inherited,
		Parent:          os.Getpid(),
		Right:           true,
		ClosedByClose:   1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("child's report (-want +got):\n%s", diff)
	}
	if line, err := out.ReadString('\n'); err != nil || line != "ready again: handover: already answered\n" {
		t.Errorf("second Ready: %q, %v", line, err)
	}

	wantBody := "child " + strconv.Itoa(succ.PID())
	early.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(early, "GET / HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, bufio.NewReader(early)); body != wantBody {
		t.Errorf("early connection got %q, want %q", body, wantBody)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: wait}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET after the old listener closed: %v", err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); string(b) != wantBody {
		t.Errorf("GET after the old listener closed = %q, want %q", b, wantBody)
	}
}

func readBody(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sortedUnion(a, b []int) []int {
	out := slices.Concat(a, b)
	slices.Sort(out)
	return slices.Compact(out)
}

// Any outcome but "ready" is an *Error that says what happened, and the
// successor is gone (killed if need be, and reaped) when AwaitReady
// returns.
func TestAwaitReadyFails(t *testing.T) {
	tests := []struct {
		mode       string
		timeout    time.Duration
		wantReason string
	}{
		{"fail", wait, "config: bad port"},
		{"exit3", wait, "it exited with code 3 before it was ready"},
		{"killed", wait, "it was killed by SIGKILL before it was ready"},
		{"silent", 300 * time.Millisecond, "not ready within 300ms"},
		{"hangup", wait, "it closed the handover channel without saying why"},
	}
	for _, tc := range tests {
		t.Run(tc.mode, func(t *testing.T) {
			succ, _ := startChild(t, tc.mode, nil)
			start := time.Now()
			err := awaitReady(t, succ, tc.timeout)
			var herr *handover.Error
			if !errors.As(err, &herr) {
				t.Fatalf("AwaitReady = %v, want a *handover.Error", err)
			}
			if diff := cmp.Diff(&handover.Error{PID: succ.PID(), Reason: tc.wantReason}, herr); diff != "" {
				t.Errorf("AwaitReady error (-want +got):\n%s", diff)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(succ.PID())) {
				t.Errorf("error %q does not name the pid", err)
			}
			if d := time.Since(start); d < tc.timeout && tc.mode == "silent" {
				t.Errorf("timed out after %s, before %s", d, tc.timeout)
			}
			if err := syscall.Kill(succ.PID(), 0); err != syscall.ESRCH {
				t.Errorf("successor %d still exists (or is unreaped) after AwaitReady: kill 0 = %v", succ.PID(), err)
			}
		})
	}
}

// awaitReady is AwaitReady, bounded: a hung AwaitReady fails the test
// instead of the whole package's run (its goroutine is then leaked, and
// goleak says so too).
func awaitReady(t *testing.T, succ *handover.Successor, timeout time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- succ.AwaitReady(context.Background(), timeout) }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout + 2*wait):
		t.Fatalf("AwaitReady(%s) has not returned after %s", timeout, timeout+2*wait)
		return nil
	}
}

// nonBlocking reports whether ln's socket is in non-blocking mode.
func nonBlocking(t *testing.T, ln *net.TCPListener) bool {
	t.Helper()
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = unix.FcntlInt(fd, unix.F_GETFL, 0) }); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	return flags&unix.O_NONBLOCK != 0
}

// The old process accepts on until the successor is ready, so its
// listener must stay non-blocking: a blocking socket (what passing
// (*TCPListener).File to exec would make of it, the mode being the
// socket's) ties a thread up in accept and ignores deadlines, so that
// the old process could not stop accepting.
func TestParentListenerStaysNonBlocking(t *testing.T) {
	ln := listen(t)
	succ, _ := startChild(t, "silent", []handover.Listener{{Key: "listen", Addr: ln.Addr().String(), Ln: ln}})
	defer succ.AwaitReady(context.Background(), time.Millisecond)
	if !nonBlocking(t, ln) {
		t.Error("the listener is in blocking mode after Start")
	}
	ln.SetDeadline(time.Now().Add(100 * time.Millisecond))
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if c != nil {
			c.Close()
		}
		accepted <- err
	}()
	select {
	case err := <-accepted:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("Accept with a deadline: %v, want a deadline error", err)
		}
	case <-time.After(wait):
		t.Error("Accept ignored its deadline: the listener blocks")
		// Unblock it: the silent successor does not accept.
		c, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
		if err == nil {
			c.Close()
		}
		<-accepted
	}
}

// Start fails before anything runs when a socket cannot be passed or the
// executable cannot start, and leaves no descriptor behind.
func TestStartFails(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	closed := listen(t)
	closed.Close()
	tests := []struct {
		name, exe string
		lns       []handover.Listener
		wantErr   string
	}{
		{"closed listener", exe, []handover.Listener{{Key: "admin listen", Addr: "x", Ln: closed}}, "pass the admin listen socket"},
		{"missing executable", "/nonexistent/gatehouse", []handover.Listener{{Key: "listen", Addr: "x", Ln: listen(t)}}, "/nonexistent/gatehouse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := fds()
			succ, err := handover.Start(tc.exe, nil, os.Environ(), tc.lns, os.Stdout, os.Stderr)
			if err == nil {
				succ.AwaitReady(context.Background(), time.Millisecond)
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Start: %v, want it to say %q", err, tc.wantErr)
			}
			if diff := cmp.Diff(before, fds()); diff != "" {
				t.Errorf("descriptors after a failed Start (-before +after):\n%s", diff)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     *string
		wantErr bool
	}{
		{"not a successor", nil, false},
		{"malformed", ptr("{"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != nil {
				t.Setenv(handover.Env, *tc.env)
			}
			in, err := handover.FromEnv()
			if in != nil || (err != nil) != tc.wantErr {
				t.Errorf("FromEnv = %v, %v; want nil and error %v", in, err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), handover.Env) {
				t.Errorf("error %q does not name %s", err, handover.Env)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
