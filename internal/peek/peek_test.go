package peek

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Look tells the three states of a real loopback connection apart, and
// reading nothing: the bytes are still there after.
func TestLook(t *testing.T) {
	client, server := loopbackPair(t)
	p := New(server)
	if got := p.Look(); got != Quiet {
		t.Fatalf("fresh connection: %v, want Quiet", got)
	}
	client.Write([]byte("x"))
	waitFor(t, server, p, Data)
	if got := p.Look(); got != Data {
		t.Errorf("peeked twice: %v, want Data (a look reads nothing)", got)
	}
	b := make([]byte, 1)
	if n, _ := server.Read(b); n != 1 || b[0] != 'x' {
		t.Fatalf("read %q after the look", b[:n])
	}
	client.Close()
	waitFor(t, server, p, Closed)
	if allocs := testing.AllocsPerRun(100, func() { p.Look() }); allocs != 0 {
		t.Errorf("Look allocates %v times", allocs)
	}
}

// Pending tells the states apart as Look does, and answers while another
// goroutine is blocked reading the connection (it takes no read lock).
func TestPendingBesideABlockedRead(t *testing.T) {
	client, server := loopbackPair(t)
	read := make(chan byte)
	go func() {
		b := make([]byte, 1)
		server.Read(b)
		read <- b[0]
	}()
	if got := Pending(server); got != Quiet {
		t.Errorf("during a blocked read: %v, want Quiet", got)
	}
	client.Write([]byte("x"))
	if b := <-read; b != 'x' {
		t.Fatalf("the blocked read got %q", b)
	}
	p := New(server)
	client.Write([]byte("y"))
	waitFor(t, server, p, Data)
	if got := Pending(server); got != Data {
		t.Errorf("a byte not read: %v, want Data", got)
	}
	client.Close()
	server.Read(make([]byte, 1))
	waitFor(t, server, p, Closed)
	if got := Pending(server); got != Closed {
		t.Errorf("after the peer's close: %v, want Closed", got)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := Pending(a); got != Unknown {
		t.Errorf("a pipe: %v, want Unknown", got)
	}
}

func TestLookNotASocket(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := New(a).Look(); got != Unknown {
		t.Errorf("a pipe: %v, want Unknown", got)
	}
}

func waitFor(t *testing.T, c net.Conn, p *Peeker, want State) {
	t.Helper()
	// poll(2) returns once the socket is readable: data came, or the
	// peer's end.
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) {
		for err = unix.EINTR; err == unix.EINTR; { // the runtime's signals interrupt it
			_, err = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLRDHUP}}, 5000)
		}
	})
	if got := p.Look(); err != nil || got != want {
		t.Fatalf("state %v (poll: %v), want %v", got, err, want)
	}
}

// loopbackPair is the two ends of a real TCP connection on loopback,
// closed when the test ends.
func loopbackPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// Wait returns once the peer has sent or closed, whether that came
// before the wait began or during it, reads nothing, and gives up at the
// read deadline; a reset, which its look takes from the socket, it
// returns as a read would have.
func TestWait(t *testing.T) {
	reset := func(c net.Conn) {
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}
	for _, tc := range []struct {
		name         string
		before, then func(c net.Conn) // the peer's act, before and during the wait
		wantDeadline bool
		wantReset    bool
		wantByte     bool // the byte is still there to read after
	}{
		{name: "sent before", before: func(c net.Conn) { c.Write([]byte("x")) }, wantByte: true},
		{name: "sent during", then: func(c net.Conn) { c.Write([]byte("x")) }, wantByte: true},
		{name: "closed during", then: func(c net.Conn) { c.Close() }},
		{name: "reset during", then: reset, wantReset: true},
		{name: "nothing", wantDeadline: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, server := loopbackPair(t)
			p := New(server)
			if tc.before != nil {
				tc.before(client)
				waitFor(t, server, p, Data)
			}
			deadline := 10 * time.Second
			if tc.wantDeadline {
				deadline = 50 * time.Millisecond
			}
			server.SetReadDeadline(time.Now().Add(deadline))
			done := make(chan error, 1)
			go func() { done <- p.Wait() }()
			if tc.then != nil {
				tc.then(client)
			}
			err := <-done
			switch {
			case tc.wantDeadline, tc.wantReset:
				var oe *net.OpError
				if !errors.As(err, &oe) || oe.Op != "read" || errors.Is(err, os.ErrDeadlineExceeded) != tc.wantDeadline ||
					errors.Is(err, syscall.ECONNRESET) != tc.wantReset {
					t.Fatalf("Wait: %v; want a read's error, deadline %v, reset %v", err, tc.wantDeadline, tc.wantReset)
				}
			case err != nil:
				t.Fatalf("Wait: %v; want nil", err)
			}
			if tc.wantByte {
				b := make([]byte, 1)
				if n, _ := server.Read(b); n != 1 || b[0] != 'x' {
					t.Errorf("read %q after the wait; want the byte sent", b[:n])
				}
			}
		})
	}
}
