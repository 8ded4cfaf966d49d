package otlp

import (
	"context"
	"net"
	"sync"
	"time"
)

// dialed keeps the connections a sender's transport dials, so that
// Shutdown closes them all: an HTTP/2 connection busy when Shutdown
// comes (or whose cancelled stream is not yet let go) is not idle then,
// and closing the idle ones would leave it open until its idle timeout.
// Once closed, it dials no more.
type dialed struct {
	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{}
}

// dial dials as a net.Dialer does, with a bound on the connect: a
// receiver that does not answer is given up on well within an export's
// time.
func (d *dialed) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	c, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		c.Close()
		return nil, ErrStopped
	}
	if d.conns == nil {
		d.conns = map[*trackedConn]struct{}{}
	}
	tc := &trackedConn{Conn: c, d: d}
	d.conns[tc] = struct{}{}
	return tc, nil
}

// closeAll closes every connection still open, and any dialed later.
func (d *dialed) closeAll() {
	d.mu.Lock()
	d.closed = true
	conns := d.conns
	d.conns = nil
	d.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

type trackedConn struct {
	net.Conn
	d *dialed
}

func (c *trackedConn) Close() error {
	c.d.mu.Lock()
	delete(c.d.conns, c)
	c.d.mu.Unlock()
	return c.Conn.Close()
}
