package upstream

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// interruptBeforeArming is a connection on which an Interrupt lands
// between a body read's look at whether it was interrupted and its
// arming of the idle deadline: the worst order, made certain.
type interruptBeforeArming struct {
	net.Conn
	src   *source
	fired bool
}

func (c *interruptBeforeArming) SetReadDeadline(t time.Time) error {
	if !c.fired && t.After(time.Now()) {
		c.fired = true
		// As Interrupt does.
		c.src.interrupted.Store(true)
		c.Conn.SetReadDeadline(time.Unix(1, 0))
	}
	return c.Conn.SetReadDeadline(t)
}

// A body read that an Interrupt crosses as it arms its idle deadline
// still ends at once: the deadline it armed does not replace the cut.
func TestInterruptCrossingABodyReadsDeadline(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if peer := <-accepted; peer != nil {
		defer peer.Close() // sends nothing: the read can only end by its deadline
	}
	src := &source{left: -1, idle: time.Minute}
	src.c = &interruptBeforeArming{Conn: c, src: src}
	done := make(chan error, 1)
	go func() {
		_, err := src.Read(make([]byte, 16))
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the interrupted read: %v, want a deadline's error", err)
		}
	case <-time.After(10 * time.Second):
		c.Close()
		t.Fatal("the read the Interrupt crossed waited on for its idle deadline")
	}
}
