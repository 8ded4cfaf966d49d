//go:build linux

package procstat

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// child is a fault app running in its own process group, as the
// supervisor starts instances.
type child struct {
	pid  int
	addr string // 127.0.0.1:PORT it listens on
	http *http.Client
}

// startChild starts the fault app with args in a new process group and
// waits until it listens. The whole group is killed and the leader reaped
// when the test ends.
func startChild(tb testing.TB, args ...string) *child {
	tb.Helper()
	bin := testutil.BuildBinary(tb, testutil.FaultAppPkg)
	port := testutil.FreePort(tb)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start fault app: %v", err)
	}
	c := &child{pid: cmd.Process.Pid, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		http: &http.Client{Timeout: 10 * time.Second}}
	tb.Cleanup(func() {
		c.http.CloseIdleConnections()
		syscall.Kill(-c.pid, syscall.SIGKILL)
		cmd.Wait()
	})
	testutil.WaitForNil(tb, 10*time.Second, fmt.Sprintf("fault app pid %d to listen on %s", c.pid, c.addr), func() error {
		conn, err := net.DialTimeout("tcp", c.addr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	})
	return c
}

// get asks the child for path and fails unless it answers 200.
func (c *child) get(tb testing.TB, path string) string {
	tb.Helper()
	resp, err := c.http.Get("http://" + c.addr + path)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		tb.Fatalf("GET %s = %d %q", path, resp.StatusCode, body)
	}
	return string(body)
}

// read reads the stats of pgids and fails unless every group is there.
func read(tb testing.TB, pgids ...int) map[int]Stats {
	tb.Helper()
	got, err := NewReader().Read(pgids)
	if err != nil {
		tb.Fatalf("Read: %v", err)
	}
	for _, g := range pgids {
		if _, ok := got[g]; !ok {
			tb.Fatalf("Read(%v) has no stats for group %d: %v", pgids, g, got)
		}
	}
	return got
}

// holdListener accepts connections on loopback and keeps them open until
// the test ends.
func holdListener(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range conns {
					c.Close()
				}
				return
			}
			conns = append(conns, c)
		}
	}()
	tb.Cleanup(func() { ln.Close(); <-done })
	return ln
}

const mib = 1 << 20

// Memory a child retains shows in both RSS and private bytes.
func TestReadMemoryGrowsWithAllocation(t *testing.T) {
	c := startChild(t)
	before := read(t, c.pid)[c.pid]
	if before.RSS == 0 || before.Private == 0 || before.Private > before.RSS {
		t.Fatalf("idle child: RSS %d, private %d; want both set and private ≤ RSS", before.RSS, before.Private)
	}
	c.get(t, "/alloc?mb=64")
	after := read(t, c.pid)[c.pid]
	// The app touches every page of 64 MiB; allow for the runtime giving
	// back a little elsewhere.
	if d := int64(after.RSS) - int64(before.RSS); d < 56*mib {
		t.Errorf("RSS grew by %d MiB after retaining 64 MiB (%d → %d)", d/mib, before.RSS/mib, after.RSS/mib)
	}
	if d := int64(after.Private) - int64(before.Private); d < 56*mib {
		t.Errorf("private bytes grew by %d MiB after retaining 64 MiB (%d → %d)", d/mib, before.Private/mib, after.Private/mib)
	}
	if after.RSS > before.RSS+128*mib {
		t.Errorf("RSS grew from %d to %d MiB after retaining 64 MiB: counted twice?", before.RSS/mib, after.RSS/mib)
	}
	if after.Threads < 1 || after.FDs < 3 || after.CPUSeconds <= 0 {
		t.Errorf("threads %d, fds %d, cpu %gs: want a live process's figures", after.Threads, after.FDs, after.CPUSeconds)
	}
	if after.At.IsZero() || time.Since(after.At) > time.Minute {
		t.Errorf("At = %v, want the time of the read", after.At)
	}
}

// A child's child in the same process group belongs to the instance:
// both pids, leader first, memory summed.
func TestReadCountsTheWholeGroup(t *testing.T) {
	pidfile := t.TempDir() + "/child.pid"
	c := startChild(t, "-spawn-child", "-child-pidfile", pidfile)
	var grandchild int
	testutil.WaitFor(t, 5*time.Second, "the grandchild's pidfile", func() bool {
		b, err := os.ReadFile(pidfile)
		if err != nil {
			return false
		}
		grandchild, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	// The leader's own RSS before the group's: a process starting up
	// only grows, and read after it could pass the group's read before.
	alone := testutil.VmRSS(t, c.pid)
	st := read(t, c.pid)[c.pid]
	if len(st.PIDs) != 2 || st.PIDs[0] != c.pid || st.PIDs[1] != grandchild {
		t.Fatalf("PIDs = %v, want [%d %d] (leader, then its child)", st.PIDs, c.pid, grandchild)
	}
	if st.RSS <= alone {
		t.Errorf("group RSS %d ≤ the leader's own %d: the child is not counted", st.RSS, alone)
	}
	// A process of another group is not counted, even when asked for
	// together.
	other := startChild(t)
	both := read(t, c.pid, other.pid)
	if got := both[other.pid].PIDs; len(got) != 1 || got[0] != other.pid {
		t.Errorf("other group's PIDs = %v, want [%d]", got, other.pid)
	}
	if got := both[c.pid].PIDs; len(got) != 2 {
		t.Errorf("group's PIDs read with another group = %v, want 2", got)
	}
	// A group that is gone is missing, not an error.
	got, err := NewReader().Read([]int{c.pid, 1 << 30})
	if err != nil {
		t.Fatalf("Read with a missing group: %v", err)
	}
	if _, ok := got[1<<30]; ok {
		t.Errorf("stats for a group that does not exist: %+v", got[1<<30])
	}
}

// The port the child listens on is among its listening addresses.
func TestReadListeningPorts(t *testing.T) {
	c := startChild(t)
	st := read(t, c.pid)[c.pid]
	found := false
	for _, a := range st.Listening {
		if a == c.addr {
			found = true
		}
	}
	if !found {
		t.Fatalf("Listening = %v, want it to include %s", st.Listening, c.addr)
	}
	for _, g := range st.Outbound {
		if g.Remote == c.addr || strings.HasSuffix(g.Remote, ":0") {
			t.Errorf("outbound group %+v: a listening or accepted socket counted as outbound", g)
		}
	}
}

// Outbound connections are grouped by remote address and state, with the
// right count; the connection the test opened to the child is not
// outbound.
func TestReadOutboundConnections(t *testing.T) {
	ln := holdListener(t)
	c := startChild(t)
	c.get(t, "/connect-out?n=20&addr="+ln.Addr().String())
	st := read(t, c.pid)[c.pid]
	var g *ConnGroup
	for i := range st.Outbound {
		if st.Outbound[i].Remote == ln.Addr().String() {
			g = &st.Outbound[i]
		}
	}
	if g == nil {
		t.Fatalf("no outbound group for %s: %+v", ln.Addr(), st.Outbound)
	}
	if g.Count != 20 || g.State != "ESTABLISHED" {
		t.Errorf("outbound to %s = %d %s, want 20 ESTABLISHED", ln.Addr(), g.Count, g.State)
	}
	// The test's own keep-alive connection to the child is inbound.
	if st.OutboundTotal != 20 {
		t.Errorf("OutboundTotal = %d, want 20 (groups %+v)", st.OutboundTotal, st.Outbound)
	}
	if st.Outbound[0].Remote != ln.Addr().String() {
		t.Errorf("largest group first: Outbound[0] = %+v", st.Outbound[0])
	}
}
