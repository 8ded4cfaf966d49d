//go:build linux

package front

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// smallSendListener gives each connection it accepts a small send
// buffer, so that a write the client does not read blocks soon.
type smallSendListener struct{ net.Listener }

func (l smallSendListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// clientHello is what a TLS client with cfg sends first.
func clientHello(t *testing.T, cfg *tls.Config) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	go tls.Client(b, cfg).Handshake()
	buf := make([]byte, 64<<10)
	a.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := a.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	return buf[:n]
}

// A TLS handshake blocked on its write, to a client that sends its
// ClientHello and never reads, does not hold Shutdown up: its wait is
// cut short like any idle connection's, not left to HeadTimeout.
func TestShutdownEndsAHandshakeBlockedOnItsWrite(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t, "http/1.1")
	// A certificate chain far larger than the sockets' buffers: the
	// server's first flight cannot all be written.
	cert := srvTLS.Certificates[0]
	cert.Certificate = append(cert.Certificate[:1:1], make([]byte, 1<<20))
	srvTLS.Certificates = []tls.Certificate{cert}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(echoStub{}, Options{TLS: srvTLS, HeadTimeout: time.Minute})
	served := make(chan struct{})
	go func() { defer close(served); s.Serve(smallSendListener{ln}) }()
	t.Cleanup(func() { s.Close(); <-served })

	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 2048) })
	}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(clientHello(t, cliTLS)); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the server's handshake to fill the client's buffer", func() bool {
		n, _ := unreadBy(c)
		return n > 1024
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}
}

// unreadBy is how many bytes c has received and not read.
func unreadBy(c net.Conn) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errors.New("not a socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var ierr error
	rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n, ierr
}
