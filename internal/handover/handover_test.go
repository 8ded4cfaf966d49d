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
	"os/signal"
	"path/filepath"
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

// The test binary is its own successor: started with roleEnv set, it
// plays that role (see play) instead of running the tests, the way
// os/exec's tests use GO_WANT_HELPER_PROCESS.
const (
	roleEnv = "HANDOVER_TEST_ROLE"
	// addrEnv is the address the "listen" socket was bound for.
	addrEnv = "HANDOVER_TEST_ADDR"
	// holdEnv makes the "ready" role wait for SIGUSR1 before it takes
	// its socket, once it said "holding" on stdout.
	holdEnv = "HANDOVER_TEST_HOLD"
)

func TestMain(m *testing.M) {
	if role, ok := os.LookupEnv(roleEnv); ok {
		os.Exit(play(role))
	}
	goleak.VerifyTestMain(m)
}

// wait bounds every wait for a started process: generous, for a busy
// machine.
const wait = 10 * time.Second

// play is what the started process does, by role:
//
//	exit3      exits with code 3 without a word
//	killed     kills itself with SIGKILL
//	fail       says "error: config: bad port" and stays
//	fail-exit  says "error: config broken" and exits 1, as gatehouse run does
//	silent     takes the handover and says nothing
//	hangup     closes the handover channel without a word
//	serve      reports what it inherited (see report), serves "child PID"
//	           on the "listen" socket and says ready (twice)
//	ready      takes the "listen" socket (after SIGUSR1 with holdEnv),
//	           closes the others, says ready, answers one connection with
//	           "new" and exits
//	fds        takes the "listen" socket, closes the others, says ready
//	           and prints each descriptor it holds (see describeFDs)
//	old        starts the test binary as its successor (role waiter),
//	           prints "successor PID" and waits for it to be ready
//	quitter    starts the test binary as its successor (role waiter) under
//	           a wrapper script, prints "quitter PID", and on SIGUSR1
//	           calls the upgrade off and exits
//	waiter     prints "waiter PID", waits until the old process closes its
//	           end of the channel, then says ready and prints what Ready
//	           returned ("ready: gone", "ready: gave up", "ready: ok" or
//	           "ready: error: MSG")
func play(role string) int {
	switch role {
	case "exit3":
		return 3
	case "killed":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		hang()
	case "old":
		return playOld()
	case "quitter":
		return playQuitter()
	}
	noCloexecBefore := noCloexec()
	in, err := handover.FromEnv()
	if err != nil || in == nil {
		fmt.Fprintf(os.Stderr, "FromEnv: %v, %v\n", in, err)
		return 2
	}
	switch role {
	case "fail":
		in.Fail(errors.New("config: bad\nport"))
		hang()
	case "fail-exit":
		in.Fail(errors.New("config broken"))
		return 1
	case "silent":
		hang()
	case "hangup":
		// The channel is fd 3 (see Start); close it without a word.
		syscall.Close(3)
		hang()
	case "serve":
		return serve(in, report{NoCloexecBefore: noCloexecBefore})
	case "ready", "fds":
		if os.Getenv(holdEnv) != "" {
			// The old process looks at its socket meanwhile: taking it
			// (net.FileListener) would make it non-blocking again.
			usr1 := make(chan os.Signal, 1)
			signal.Notify(usr1, syscall.SIGUSR1)
			fmt.Println("holding")
			<-usr1
		}
		ln, ok, err := in.Listener("listen", os.Getenv(addrEnv))
		if !ok || err != nil {
			in.Fail(fmt.Errorf("no listen socket: %v", err))
			return 1
		}
		in.Close()
		if err := in.Ready(); err != nil {
			return 1
		}
		if role == "fds" {
			fmt.Print(describeFDs())
			return 0
		}
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		c.Write([]byte("new\n"))
		c.Close()
		return 0
	case "waiter":
		return playWaiter(in)
	}
	return 2
}

// hang blocks until the process is killed: a successor that never
// answers, or answered and serves on.
func hang() {
	for {
		unix.Pause()
	}
}

// report is what the "serve" role found, as it writes it on stdout
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
	hang()
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

// describeFDs lists this process's descriptors above 2 as "N TARGET
// cloexec|inherit" lines.
func describeFDs() string {
	var b strings.Builder
	for _, fd := range fds() {
		if fd <= 2 {
			continue
		}
		target, err := os.Readlink(filepath.Join("/proc/self/fd", strconv.Itoa(fd)))
		flags, ferr := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || ferr != nil {
			continue
		}
		mode := "inherit"
		if flags&unix.FD_CLOEXEC != 0 {
			mode = "cloexec"
		}
		fmt.Fprintf(&b, "%d %s %s\n", fd, target, mode)
	}
	return b.String()
}

// startRole starts the test binary as a successor playing role, giving it
// lns (the first, if any, is "listen": addrEnv names its address), with
// its stdout on the returned reader. The process is killed, if still
// running, when the test ends, and waited for until reaped (by Start's
// own goroutine).
func startRole(t *testing.T, role string, lns []handover.Listener, env ...string) (*handover.Successor, *bufio.Reader) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return startExe(t, exe, nil, role, lns, env...)
}

// startExe is startRole with the program to start: the test binary under
// a wrapper, say.
func startExe(t *testing.T, exe string, args []string, role string, lns []handover.Listener, env ...string) (*handover.Successor, *bufio.Reader) {
	t.Helper()
	testutil.SkipInShort(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// A stale Env, as a successor that upgrades again would pass on: Start
	// must replace it.
	env = append(append(os.Environ(), handover.Env+"=stale", roleEnv+"="+role), env...)
	if len(lns) > 0 {
		env = append(env, addrEnv+"="+lns[0].Addr)
	}
	succ, err := handover.Start(exe, args, env, lns, w, os.Stderr)
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pid := succ.PID()
		syscall.Kill(pid, syscall.SIGKILL)
		waitReaped(t, pid)
		r.Close()
	})
	r.SetReadDeadline(time.Now().Add(wait))
	return succ, bufio.NewReader(r)
}

// waitReaped waits until pid is gone and reaped (a successor by Start's
// goroutine, which then ends).
func waitReaped(t *testing.T, pid int) {
	t.Helper()
	testutil.WaitFor(t, wait, fmt.Sprintf("pid %d to be reaped", pid), func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH })
}

// listen is a TCP listener on 127.0.0.1, closed when the test ends.
func listen(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// handed is ln handed over as "listen", bound for its own address.
func handed(ln *net.TCPListener) []handover.Listener {
	return []handover.Listener{{Key: "listen", Addr: ln.Addr().String(), Ln: ln}}
}

// awaitReady is AwaitReady, bounded: a hung AwaitReady (the old
// gatehouse's upgrade hanging) fails the test instead of the whole
// package's run (its goroutine is then leaked, and goleak says so too).
func awaitReady(t *testing.T, succ *handover.Successor, timeout time.Duration) error {
	t.Helper()
	bound := min(timeout, wait) + 2*wait
	done := make(chan error, 1)
	go func() { done <- succ.AwaitReady(context.Background(), timeout) }()
	select {
	case err := <-done:
		return err
	case <-time.After(bound):
		t.Fatalf("AwaitReady(%s) has not returned after %s", timeout, bound)
		return nil
	}
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
	// Parallel: its second Ready waits goneWithin to see the old process
	// gone. Other tests' Starts make no descriptor without close-on-exec
	// here, so passedOn is not disturbed.
	t.Parallel()
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
	succ, out := startRole(t, "serve", append(handed(ln), handover.Listener{Key: "spare", Addr: spare.Addr().String(), Ln: spare}))
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
// returns. A successor that cannot take over (its config fails, its
// address is taken) says why, or exits: the old process learns it at
// once, not at the timeout, so that it takes its instances back and
// `gatehouse upgrade` exits 1 with the reason. One that stays silent is
// killed after the timeout.
func TestAwaitReadyFails(t *testing.T) {
	tests := []struct {
		role       string
		timeout    time.Duration
		wantReason string
	}{
		{"fail", time.Minute, "config: bad port"},
		{"fail-exit", time.Minute, "config broken"},
		{"exit3", time.Minute, "it exited with code 3 before it was ready"},
		{"killed", time.Minute, "it was killed by SIGKILL before it was ready"},
		{"silent", 300 * time.Millisecond, "not ready within 300ms"},
		{"hangup", time.Minute, "it closed the handover channel without saying why"},
	}
	for _, tc := range tests {
		t.Run(tc.role, func(t *testing.T) {
			t.Parallel()
			succ, _ := startRole(t, tc.role, handed(listen(t)))
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
			if d := time.Since(start); d < tc.timeout && tc.role == "silent" {
				t.Errorf("timed out after %s, before %s", d, tc.timeout)
			}
			if err := syscall.Kill(succ.PID(), 0); err != syscall.ESRCH {
				t.Errorf("successor %d still exists (or is unreaped) after AwaitReady: kill 0 = %v", succ.PID(), err)
			}
		})
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
