package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one running faultapp.
type proc struct {
	cmd    *exec.Cmd
	port   int // PORT it was given
	lines  chan string
	stderr *LockedBuffer
	done   chan struct{} // closed once the process has been reaped
}

// startFault runs the fault app the way gatehouse would: PORT and the
// GATEHOUSE_* variables set, in its own process group, killed (group and
// all) when the test ends.
func startFault(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	// Built first: the port is chosen as late as it can be, as another
	// test may choose it too until the app has bound it.
	bin := BuildBinary(t, FaultAppPkg)
	p := &proc{port: FreePort(t), lines: make(chan string, 100), stderr: &LockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(p.port), "GATEHOUSE_APP=web", "GATEHOUSE_INSTANCE=web-1")
	p.cmd.Env = append(p.cmd.Env, env...)
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A grandchild inherits stderr; do not let it hold Wait up.
	p.cmd.WaitDelay = time.Second
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			p.lines <- s.Text()
		}
	}()
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

// line waits for a stdout line starting with prefix and returns the rest.
func (p *proc) line(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest
			}
		case <-p.done:
			t.Fatalf("exited before printing %q; stderr:\n%s", prefix, p.stderr)
		case <-timeout:
			t.Fatalf("no %q line; stderr:\n%s", prefix, p.stderr)
		}
	}
}

// listening waits for the "listening on" line and returns the address.
func (p *proc) listening(t *testing.T) string {
	t.Helper()
	return p.line(t, "listening on ")
}

// exitCode waits for the process to exit.
func (p *proc) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		t.Fatalf("process did not exit; stderr:\n%s", p.stderr)
		return 0
	}
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return resp, string(body)
}

func TestFaultAppRoutes(t *testing.T) {
	p := startFault(t, nil)
	addr := p.listening(t)
	if want := fmt.Sprintf("127.0.0.1:%d", p.port); addr != want {
		t.Fatalf("listening on %s, want %s (PORT)", addr, want)
	}
	pid := strconv.Itoa(p.cmd.Process.Pid)
	tests := []struct {
		name, method, path, body string
		wantStatus               int
		wantBody                 string // "{pid}" is replaced; a trailing "*" matches any rest
		wantHeader               map[string]string
	}{
		{"root names instance and pid", "GET", "/", "", 200, "web-1 {pid}", map[string]string{"X-Instance": "web-1"}},
		{"healthz", "GET", "/healthz", "", 200, "ok", nil},
		{"pid", "GET", "/pid", "", 200, "{pid}", nil},
		{"echo post", "POST", "/echo", "hello body", 200, "hello body", map[string]string{"X-Method": "POST", "X-Instance": "web-1"}},
		{"status", "GET", "/status?code=503", "", 503, "status 503", nil},
		{"env", "GET", "/env?key=GATEHOUSE_APP", "", 200, "web", nil},
		{"sleep", "GET", "/sleep?d=10ms", "", 200, "slept 10ms", nil},
		{"alloc", "GET", "/alloc?mb=2", "", 200, "retained 2 MiB", nil},
		{"busy", "GET", "/busy?d=20ms", "", 200, "spun 20ms*", nil},
		{"work", "GET", "/work?d=5ms", "", 200, "worked 5ms", nil},
		{"headers", "GET", "/headers", "", 200, `{"Accept-Encoding":["gzip"],"Host":["` + addr + `"],*`, nil},
		{"set-health", "GET", "/set-health?status=200", "", 200, "health 200 delay 0s", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://"+addr+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			want := strings.ReplaceAll(tc.wantBody, "{pid}", pid)
			if prefix, ok := strings.CutSuffix(want, "*"); ok {
				if !strings.HasPrefix(string(got), prefix) {
					t.Errorf("body = %q, want prefix %q", got, prefix)
				}
			} else if string(got) != want {
				t.Errorf("body = %q, want %q", got, want)
			}
			for k, v := range tc.wantHeader {
				if g := resp.Header.Get(k); g != v {
					t.Errorf("header %s = %q, want %q", k, g, v)
				}
			}
		})
	}
}

func TestFaultAppHealth(t *testing.T) {
	tests := []struct {
		name       string
		env        []string
		args       []string
		wantStatus int
		minTime    time.Duration
	}{
		{"default", nil, nil, 200, 0},
		{"flag status", nil, []string{"-health-status", "403"}, 403, 0},
		{"env status", []string{"FAULT_HEALTH_STATUS=503"}, nil, 503, 0},
		{"flag beats env", []string{"FAULT_HEALTH_STATUS=503"}, []string{"-health-status", "204"}, 204, 0},
		{"delay", nil, []string{"-health-delay", "300ms"}, 200, 300 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startFault(t, tc.env, tc.args...)
			addr := p.listening(t)
			start := time.Now()
			resp, _ := get(t, "http://"+addr+"/healthz")
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if took := time.Since(start); took < tc.minTime {
				t.Errorf("answered in %v, want at least %v", took, tc.minTime)
			}
		})
	}
}

func TestFaultAppSetHealth(t *testing.T) {
	p := startFault(t, nil)
	addr := p.listening(t)
	get(t, "http://"+addr+"/set-health?status=500")
	if resp, _ := get(t, "http://"+addr+"/healthz"); resp.StatusCode != 500 {
		t.Fatalf("after set-health, /healthz = %d, want 500", resp.StatusCode)
	}
}

func TestFaultAppSSEStreams(t *testing.T) {
	p := startFault(t, nil)
	addr := p.listening(t)
	resp, err := http.Get("http://" + addr + "/sse?n=3&every=200ms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type = %q", ct)
	}
	var events []string
	var at []time.Time
	s := bufio.NewScanner(resp.Body)
	for s.Scan() {
		if data, ok := strings.CutPrefix(s.Text(), "data: "); ok {
			events = append(events, data)
			at = append(at, time.Now())
		}
	}
	want := []string{"event 1", "event 2", "event 3"}
	if strings.Join(events, "|") != strings.Join(want, "|") {
		t.Fatalf("events = %q, want %q", events, want)
	}
	// Flushed one by one, the first arrives ~400ms before the last; a
	// buffered stream would deliver them together.
	if gap := at[2].Sub(at[0]); gap < 300*time.Millisecond {
		t.Errorf("events 1 and 3 arrived %v apart; stream was buffered", gap)
	}
	// ?type= streams them as something else.
	resp, err = http.Get("http://" + addr + "/sse?n=1&type=text/plain")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain" {
		t.Errorf("?type=text/plain: Content-Type = %q", ct)
	}
}

func TestFaultAppExitAtStart(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want int
	}{
		{"code 0", nil, []string{"-exit-at-start", "0"}, 0},
		{"code 7", nil, []string{"-exit-at-start", "7"}, 7},
		{"from env", []string{"FAULT_EXIT_AT_START=5"}, nil, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := startFault(t, tc.env, tc.args...)
			if got := p.exitCode(t); got != tc.want {
				t.Errorf("exit code = %d, want %d", got, tc.want)
			}
			if !strings.Contains(p.stderr.String(), "exit-at-start") {
				t.Errorf("stderr does not name the fault:\n%s", p.stderr)
			}
		})
	}
}

func TestFaultAppPortFaults(t *testing.T) {
	other := FreePort(t)
	tests := []struct {
		name     string
		args     []string
		wantPort func(got int) bool
	}{
		{"ignore-port picks a random port", []string{"-ignore-port"}, func(got int) bool { return got != 0 }},
		{"listen-port uses the given port", []string{"-listen-port", strconv.Itoa(other)}, func(got int) bool { return got == other }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startFault(t, nil, tc.args...)
			_, portStr, err := net.SplitHostPort(p.listening(t))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := strconv.Atoi(portStr)
			if got == p.port || !tc.wantPort(got) {
				t.Fatalf("listening on port %d (PORT was %d)", got, p.port)
			}
			if resp, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d/", got)); resp.StatusCode != 200 {
				t.Errorf("GET / on the real port = %d", resp.StatusCode)
			}
			if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port)); err == nil {
				c.Close()
				t.Errorf("something listens on PORT %d", p.port)
			}
		})
	}
}

func TestFaultAppNoListen(t *testing.T) {
	p := startFault(t, nil, "-no-listen")
	WaitFor(t, 5*time.Second, "no-listen log line", func() bool {
		return strings.Contains(p.stderr.String(), "no-listen")
	})
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p.port)); err == nil {
		c.Close()
		t.Fatal("PORT accepts connections")
	}
	if !ProcessAlive(p.cmd.Process.Pid) {
		t.Fatal("process died")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.exitCode(t); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

func TestFaultAppSpawnChild(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "child.pid")
	p := startFault(t, nil, "-spawn-child", "-child-pidfile", pidfile)
	printed, err := strconv.Atoi(p.line(t, "child pid "))
	if err != nil {
		t.Fatal(err)
	}
	var fromFile int
	WaitFor(t, 5*time.Second, "child pid file", func() bool {
		b, err := os.ReadFile(pidfile)
		fromFile, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && fromFile > 0
	})
	if fromFile != printed {
		t.Fatalf("pid file says %d, stdout says %d", fromFile, printed)
	}
	if !ProcessAlive(printed) {
		t.Fatal("child is not alive")
	}
	parentGroup, _ := syscall.Getpgid(p.cmd.Process.Pid)
	if g, _ := syscall.Getpgid(printed); g != parentGroup {
		t.Fatalf("child in process group %d, parent in %d", g, parentGroup)
	}
	// Killing only the parent leaves the orphan a supervisor must not
	// leave; killing the group stops both.
	p.cmd.Process.Kill()
	p.exitCode(t)
	if !ProcessAlive(printed) {
		t.Fatal("child died with its parent; it should be orphaned")
	}
	syscall.Kill(-parentGroup, syscall.SIGKILL)
	WaitFor(t, 5*time.Second, "child to die", func() bool { return !ProcessAlive(printed) })
}

func TestFaultAppCrash(t *testing.T) {
	tests := []struct{ path, wantStderr string }{
		{"/crash", "panic: crash requested on /crash"},
		{"/crash-after?d=50ms", "panic: crash requested on /crash-after"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			p := startFault(t, nil)
			addr := p.listening(t)
			if resp, err := http.Get("http://" + addr + tc.path); err == nil {
				resp.Body.Close()
				t.Errorf("got a response (%d), want the connection dropped", resp.StatusCode)
			}
			if code := p.exitCode(t); code != 3 {
				t.Errorf("exit code = %d, want 3", code)
			}
			if !strings.Contains(p.stderr.String(), tc.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantStderr, p.stderr)
			}
		})
	}
}

func TestFaultAppSIGTERM(t *testing.T) {
	t.Run("graceful finishes in-flight request", func(t *testing.T) {
		t.Parallel()
		p := startFault(t, nil)
		addr := p.listening(t)
		type result struct {
			status int
			err    error
		}
		res := make(chan result, 1)
		go func() {
			resp, err := http.Get("http://" + addr + "/sleep?d=500ms")
			if err != nil {
				res <- result{err: err}
				return
			}
			resp.Body.Close()
			res <- result{status: resp.StatusCode}
		}()
		time.Sleep(100 * time.Millisecond) // let the request arrive
		p.cmd.Process.Signal(syscall.SIGTERM)
		if r := <-res; r.err != nil || r.status != 200 {
			t.Errorf("in-flight request: status %d, err %v", r.status, r.err)
		}
		if code := p.exitCode(t); code != 0 {
			t.Errorf("exit code = %d, want 0", code)
		}
	})
	t.Run("ignore-sigterm keeps serving", func(t *testing.T) {
		t.Parallel()
		p := startFault(t, nil, "-ignore-sigterm")
		addr := p.listening(t)
		p.cmd.Process.Signal(syscall.SIGTERM)
		WaitFor(t, 5*time.Second, "ignored-SIGTERM log line", func() bool {
			return strings.Contains(p.stderr.String(), "SIGTERM received and ignored")
		})
		if resp, _ := get(t, "http://"+addr+"/"); resp.StatusCode != 200 {
			t.Errorf("after SIGTERM GET / = %d", resp.StatusCode)
		}
	})
}

// rawRequest sends one request on a fresh connection and returns it with a
// reader over the answer.
func rawRequest(t *testing.T, addr, path string, extra string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, addr, extra)
	return c, bufio.NewReader(c)
}

func TestFaultAppBrokenResponses(t *testing.T) {
	p := startFault(t, nil)
	addr := p.listening(t)

	t.Run("truncate", func(t *testing.T) {
		resp, err := http.Get("http://" + addr + "/truncate")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if !errors.Is(err, io.ErrUnexpectedEOF) || len(body) != 100 || resp.ContentLength != 1000 {
			t.Errorf("read %d of %d bytes, err %v; want 100 and unexpected EOF", len(body), resp.ContentLength, err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		_, r := rawRequest(t, addr, "/garbage", "")
		got, _ := io.ReadAll(r)
		if string(got) != "NOT HTTP\r\n\r\n" {
			t.Errorf("got %q", got)
		}
	})
	t.Run("ws echoes both ways", func(t *testing.T) {
		c, r := rawRequest(t, addr, "/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\n")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 101 || resp.Header.Get("Upgrade") != "websocket" {
			t.Fatalf("status %d, Upgrade %q", resp.StatusCode, resp.Header.Get("Upgrade"))
		}
		for _, msg := range []string{"ping", "second message"} {
			io.WriteString(c, msg)
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(r, got); err != nil || string(got) != msg {
				t.Errorf("echo of %q = %q, %v", msg, got, err)
			}
		}
	})
	t.Run("hang stops when the client leaves", func(t *testing.T) {
		c, r := rawRequest(t, addr, "/hang", "")
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := r.ReadByte(); err == nil {
			t.Fatal("/hang answered")
		}
		c.Close()
		WaitFor(t, 5*time.Second, "hang to notice the client left", func() bool {
			return strings.Contains(p.stderr.String(), "hang: client went away")
		})
	})
}

func TestFaultAppKeepaliveIdle(t *testing.T) {
	p := startFault(t, nil, "-keepalive-idle", "200ms")
	addr := p.listening(t)
	_, r := rawRequest(t, addr, "/", "")
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	if ka := resp.Header.Get("Keep-Alive"); ka != "" || resp.Close {
		t.Fatalf("Keep-Alive header %q, close %v; want a silent keep-alive", ka, resp.Close)
	}
	start := time.Now()
	if _, err := r.ReadByte(); err != io.EOF {
		t.Fatalf("idle read: %v, want EOF", err)
	}
	if idle := time.Since(start); idle < 150*time.Millisecond || idle > 2*time.Second {
		t.Errorf("server closed after %v idle, want ~200ms", idle)
	}
}

func TestFaultAppConnectOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	accepted := 0
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			mu.Lock()
			accepted++
			mu.Unlock()
		}
	}()
	p := startFault(t, nil)
	addr := p.listening(t)
	resp, body := get(t, "http://"+addr+"/connect-out?n=5&addr="+ln.Addr().String())
	if resp.StatusCode != 200 || body != "opened 5, holding 5" {
		t.Fatalf("connect-out = %d %q", resp.StatusCode, body)
	}
	WaitFor(t, 5*time.Second, "5 accepted connections", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return accepted == 5
	})
}
