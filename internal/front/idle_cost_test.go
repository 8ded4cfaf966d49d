//go:build linux

package front

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// The cost of an idle keep-alive connection: each client opens a
// connection, sends one request, reads its answer and then holds the
// connection; and of a request waiting for its app's answer. The clients
// are raw sockets driven by system calls, with no Go object per
// connection, so that what the process's memory grows by is the server's
// alone.

// echoStub answers every request with its method and target, and keeps
// nothing (limStub's record would be counted as the connections' cost).
type echoStub struct{}

func (echoStub) Serve(x *Exchange) {
	if answerRefusal(x) {
		return
	}
	limAnswer(x.W, http.StatusOK, x.Req.Method+" "+x.Req.RequestURI)
}

// idleCostConns is how many connections TestIdleConnCost and
// BenchmarkIdleConns hold: GATEHOUSE_IDLE_CONNS, else n.
func idleCostConns(t testing.TB, n int) int {
	if v := os.Getenv("GATEHOUSE_IDLE_CONNS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("GATEHOUSE_IDLE_CONNS=%q: want a positive number", v)
		}
	}
	return n
}

// needFiles skips the test unless the process may open n more files
// (raising its soft limit as far as the hard one allows).
func needFiles(t testing.TB, n int) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("no file limit: %v", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
	if have := int(lim.Cur) - openFiles(t); have < n {
		t.Skipf("needs %d more open files; the limit (%d) leaves %d", n, lim.Cur, have)
	}
}

// openFiles is how many files the process has open.
func openFiles(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// memInUse is the process's live heap plus its goroutine stacks, from
// runtime/metrics, after two collections (the second empties the
// sync.Pools' victim caches, whose buffers are not a connection's cost).
func memInUse() uint64 {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64() + s[1].Value.Uint64()
}

// rawClient is a client connection as a bare socket.
type rawClient int

// dialRaw connects to addr (an IPv4 loopback address) with a blocking
// socket whose reads give up after 10 s.
func dialRaw(addr *net.TCPAddr) (rawClient, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	tv := unix.Timeval{Sec: 10}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	sa := &unix.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	err = unix.Connect(fd, sa)
	if err == unix.EINTR {
		// A signal (the runtime's preemption) cut the wait short; the
		// connection goes on being made: wait for it, and take its result.
		err = awaitConnect(fd)
	}
	if err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect: %w", err)
	}
	return rawClient(fd), nil
}

// awaitConnect waits up to 10 s for a connect under way on fd to end, and
// returns how it ended.
func awaitConnect(fd int) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for {
		n, err := unix.Poll(pfd, 10_000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.ETIMEDOUT
		}
		break
	}
	soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return err
	}
	if soErr != 0 {
		return unix.Errno(soErr)
	}
	return nil
}

// roundTrip sends req and reads until the answer ends with want.
func (c rawClient) roundTrip(req, want string) error {
	// Blocking calls on a raw socket: Go's preemption signals interrupt
	// them (EINTR), to be made again.
	_, err := unix.Write(int(c), []byte(req))
	for err == unix.EINTR {
		_, err = unix.Write(int(c), []byte(req))
	}
	if err != nil {
		return fmt.Errorf("write: %w", err)
	}
	var got []byte
	buf := make([]byte, 512)
	for !bytes.HasSuffix(got, []byte(want)) {
		n, err := unix.Read(int(c), buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("read after %q: %w", got, err)
		}
		if n == 0 {
			return fmt.Errorf("closed after %q", got)
		}
		got = append(got, buf[:n]...)
	}
	return nil
}

func (c rawClient) close() { unix.Close(int(c)) }

// openIdle opens n connections to addr, four dialers at a time, each
// served one request, and returns them held open.
func openIdle(t testing.TB, addr string, n int) []rawClient {
	t.Helper()
	return openIdleWith(t, addr, n, "GET /idle HTTP/1.1\r\nHost: a\r\n\r\n", "GET /idle")
}

// openIdleWith opens n connections to addr, four dialers at a time, each
// sending req and reading until what it got ends with want, and returns
// them held open.
func openIdleWith(t testing.TB, addr string, n int, req, want string) []rawClient {
	t.Helper()
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cs := make([]rawClient, n)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for i := w; i < n; i += len(errs) {
				c, err := dialRaw(ta)
				if err == nil {
					cs[i] = c
					err = c.roundTrip(req, want)
				}
				if err != nil {
					errs[w] = fmt.Errorf("connection %d: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range cs {
			if c > 0 {
				c.close()
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return cs
}

// idleCost serves a front on loopback, opens n idle connections to it,
// and returns the memory the server holds per connection once they all
// wait for their next request.
func idleCost(t testing.TB, n int, opts Options) float64 {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(echoStub{}, opts)
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	// One connection first, for what the server makes once (pools, the
	// poller), which no connection pays for.
	cs := openIdle(t, ln.Addr().String(), 1)
	waitSettled(t, s, 1)
	before := memInUse()
	openIdle(t, ln.Addr().String(), n)
	waitSettled(t, s, n+1)
	after := memInUse()
	runtime.KeepAlive(cs)
	return float64(int64(after)-int64(before)) / float64(n)
}

// waitSettled waits until s holds n connections, all parked.
func waitSettled(t testing.TB, s *Server, n int) {
	t.Helper()
	testutil.WaitFor(t, 60*time.Second, strconv.Itoa(n)+" connections, all parked", func() bool {
		parked, total := countConns(s, func(fc *conn) bool { return fc.state.Load() == connParked })
		return total == n && parked == n
	})
}

// An idle keep-alive connection costs the server at most 1 KiB of live
// heap: about 600 bytes, most of it the socket's own objects in package
// net (about 310 bytes), then its 56-byte conn, its poller slot and its
// entry in the server's set. (The budget per idle connection, 2 KiB of
// RSS, also counts what the runtime holds outside the heap for each
// socket: its 512-byte pollDesc; bench/idle.sh measures that beside nginx
// and HAProxy.)
func TestIdleConnCost(t *testing.T) {
	n := idleCostConns(t, 2000)
	needFiles(t, 2*n+100)
	const budget = 1 << 10
	perConn := idleCost(t, n, Options{})
	t.Logf("%d idle connections: %.0f bytes each (heap objects + goroutine stacks)", n, perConn)
	if perConn > budget {
		t.Errorf("an idle keep-alive connection costs %.0f bytes; the budget is %d", perConn, budget)
	}
}

// BenchmarkIdleConns reports what an idle keep-alive connection costs the
// server (bytes/conn: live heap and goroutine stacks), with 2000
// connections, or GATEHOUSE_IDLE_CONNS. The loop itself does nothing:
// the metric is the point.
func BenchmarkIdleConns(b *testing.B) {
	n := idleCostConns(b, 2000)
	needFiles(b, 2*n+100)
	perConn := idleCost(b, n, Options{})
	for b.Loop() {
	}
	b.ReportMetric(perConn, "bytes/conn")
}

// 20,000 idle keep-alive connections (GATEHOUSE_IDLE_MANY to change it)
// are held and then each served again, where the file limit allows both
// their ends in this process.
func TestManyIdleConns(t *testing.T) {
	if testing.Short() {
		t.Skip("slow; skipped in -short")
	}
	n := 20000
	if v := os.Getenv("GATEHOUSE_IDLE_MANY"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("GATEHOUSE_IDLE_MANY=%q: want a positive number", v)
		}
	}
	needFiles(t, 2*n+100)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(echoStub{}, Options{})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	cs := openIdle(t, ln.Addr().String(), n)
	waitSettled(t, s, n)
	start := time.Now()
	for i, c := range cs {
		if err := c.roundTrip("GET /again HTTP/1.1\r\nHost: a\r\n\r\n", "GET /again"); err != nil {
			t.Fatalf("connection %d, again: %v", i, err)
		}
	}
	t.Logf("%d parked connections served again, one after the other, in %v", n, time.Since(start))
	waitSettled(t, s, n)
	for _, c := range cs {
		c.close()
	}
	waitSettled(t, s, 0)
}

// holdStub holds every request at the handler until release is closed,
// counting those it holds, then answers it.
type holdStub struct {
	held    atomic.Int64
	release chan struct{}
}

func (h *holdStub) Serve(x *Exchange) {
	if answerRefusal(x) {
		return
	}
	h.held.Add(1)
	<-h.release
	limAnswer(x.W, http.StatusOK, x.Req.Method+" "+x.Req.RequestURI)
}

// A request waiting for its app's answer holds no buffer: not the read
// buffer (its head is parsed into strings of its own, and the client's
// leaving is watched with a read of one byte), nor a write buffer (the
// answer takes one when its head is written). What it costs is its
// goroutine's stack and its request state, about 7 KiB, which the
// budget bounds: either buffer would exceed it.
func TestWaitingRequestCost(t *testing.T) {
	if raceEnabled {
		t.Skip("under -race goroutine stacks are larger and sync.Pool drops items")
	}
	const n, budget = 500, 10 << 10
	needFiles(t, 2*n+100)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &holdStub{release: make(chan struct{})}
	s := New(h, Options{})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	t.Cleanup(func() { close(h.release) })
	ta := ln.Addr().(*net.TCPAddr)
	send := func(k int) []rawClient {
		cs := make([]rawClient, k)
		for i := range cs {
			c, err := dialRaw(ta)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.close)
			cs[i] = c
			if _, err := unix.Write(int(c), []byte("GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
		}
		return cs
	}
	// One request first, for what the server makes once.
	send(1)
	testutil.WaitFor(t, 30*time.Second, "the first request held", func() bool { return h.held.Load() == 1 })
	before := memInUse()
	send(n)
	testutil.WaitFor(t, 60*time.Second, "the requests held", func() bool { return h.held.Load() == n+1 })
	perReq := float64(int64(memInUse())-int64(before)) / n
	t.Logf("%d requests waiting for their app: %.0f bytes each (heap objects + goroutine stacks)", n, perReq)
	if perReq > budget {
		t.Errorf("a request waiting for its app costs %.0f bytes; the budget is %d", perReq, budget)
	}
}
