package gateway

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pconn is one keep-alive connection to a member.
type pconn struct {
	conn net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	// idleSince is when the connection was last returned to the pool.
	idleSince time.Time
}

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4096) }}
)

func newPconn(c net.Conn) *pconn {
	br := readers.Get().(*bufio.Reader)
	br.Reset(c)
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(c)
	return &pconn{conn: c, br: br, bw: bw}
}

// close closes the connection and recycles its buffers. A connection
// handed to an upgrade keeps its reader until the upgrade ends.
func (pc *pconn) close() {
	pc.conn.Close()
	pc.bw.Reset(nil)
	writers.Put(pc.bw)
	pc.br.Reset(nil)
	readers.Put(pc.br)
}

// alive peeks at the socket without blocking: a connection the app has
// closed while it sat idle reads EOF, one that is fine has nothing to read.
// One syscall, and it closes the keep-alive race for connections that were
// idle long enough to have been closed.
func (pc *pconn) alive() bool {
	if pc.br.Buffered() > 0 {
		return false // the app sent something unasked: a 408, a close notice
	}
	sc, ok := pc.conn.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := true
	var buf [1]byte
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		switch {
		case errors.Is(rerr, unix.EAGAIN):
		case rerr != nil, n == 0, n > 0:
			alive = false
		}
		return true
	})
	return err == nil && alive
}
