package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/spool"
)

// tunnel answers an upgrade the app accepted: the app's 101 goes to the
// client, and from then on the connection carries the protocol they
// switched to (a WebSocket), copied both ways until either side ends it
// or neither sends anything for the app's tunnel_idle_timeout. The
// member is released, and its max_inflight slot freed, when the tunnel
// ends (a one-request-at-a-time app is busy with it all along).
func (g *Gateway) tunnel(x *front.Exchange, a *appProxy, rw *responseWriter, st *reqState, resp *http.Response) {
	ub := resp.Body.(*upgradeBody)
	defer ub.Close()
	to := resp.Header["Upgrade"]
	removeHopByHop(resp.Header)
	resp.Header["Upgrade"] = to
	x.W.UseHeader(resp.Header)
	rw.WriteHeader(http.StatusSwitchingProtocols)
	client, pending, err := x.Tunnel()
	if err != nil {
		// The client's connection broke as the 101 went out: it never
		// had the switch.
		st.upgraded = false
		return
	}
	defer client.Close()
	ub.m.TunnelOpened()
	defer ub.m.TunnelClosed()
	idle := a.cfg.Load().Limits.TunnelIdleTimeout.D()
	rw.bytes += relay(client, pending, ub.conn, ub.br, idle)
}

// halfCloseLinger is how long a tunnel lasts, silent, after one side
// ended its half of the conversation (HAProxy's timeout client-fin): the
// other may still be talking, and goes on while it does, but a silent
// one must not hold the tunnel (and its instance) open for ever.
const halfCloseLinger = time.Second

// relay copies between the client's connection (after the bytes it sent
// already, pending) and the app's (after what its reader buffered) until
// both sides ended their halves, a side fails, or neither sends anything
// for idle (for halfCloseLinger once one side ended). It returns the
// bytes the client was sent.
func relay(client net.Conn, pending []byte, app net.Conn, appBuf *bufio.Reader, idle time.Duration) int64 {
	t := &tunnelClock{start: time.Now()}
	t.idle.Store(int64(idle))
	up := pipe{dst: app, src: client, r: io.MultiReader(bytes.NewReader(pending), client), t: t}
	down := pipe{dst: client, src: app, r: appBuf, t: t}
	ended := make(chan *pipe, 2)
	go func() { up.err = up.run(); ended <- &up }()
	go func() { down.err = down.run(); ended <- &down }()
	if first := <-ended; first.err == nil {
		// One side ended its half cleanly (and the other was told): the
		// other goes on while it talks, within the shorter bound; its
		// read is woken to take it. The linger counts from the
		// half-close, not from the last byte before it: after a silence
		// longer than the linger, the other side's answer to the end
		// would find the tunnel idle already, and be lost. (last first:
		// the other side reads the two apart, and must not see the short
		// bound with the old last.)
		t.last.Store(int64(time.Since(t.start)))
		t.idle.Store(int64(halfCloseLinger))
		other := &up
		if first == &up {
			other = &down
		}
		other.src.SetReadDeadline(time.Now())
		<-ended
	} else {
		client.Close()
		app.Close()
		<-ended
	}
	client.Close()
	app.Close()
	return down.n
}

// tunnelClock is a tunnel's idleness, shared by its two directions.
type tunnelClock struct {
	start time.Time
	// last is when a byte last went either way (since start).
	last atomic.Int64
	// idle is how long the tunnel may be silent.
	idle atomic.Int64
}

// deadline is when the tunnel, silent from now on, is idle.
func (t *tunnelClock) deadline() time.Time {
	return t.start.Add(time.Duration(t.last.Load() + t.idle.Load()))
}

// pipe is one direction of a tunnel.
type pipe struct {
	dst, src net.Conn
	r        io.Reader // src, after what was read of it already
	t        *tunnelClock
	n        int64
	err      error
}

// errIdle: neither side sent anything for the tunnel's idle timeout.
var errIdle = errors.New("tunnel idle")

// run copies until src ends (nil, after passing the half-close on to
// dst), or a read or write fails, or the tunnel is idle. Its buffer is
// small: an open WebSocket is mostly waiting, and thousands may be.
func (p *pipe) run() error {
	buf := spool.Buffer(4 << 10)
	defer spool.Release(buf)
	for {
		// Idle from the last byte either way, not from this read.
		p.src.SetReadDeadline(p.t.deadline())
		n, err := p.r.Read(buf)
		if n > 0 {
			p.t.last.Store(int64(time.Since(p.t.start)))
			// A side that stops reading holds the tunnel no longer than
			// a silent one.
			p.dst.SetWriteDeadline(p.t.deadline())
			m, werr := p.dst.Write(buf[:n])
			p.n += int64(m)
			if werr != nil {
				return werr
			}
		}
		switch {
		case err == io.EOF:
			if cw, ok := p.dst.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Quiet this way; the tunnel is idle only if the other way
			// is too (or the bound was shortened: see relay).
			if time.Now().Before(p.t.deadline()) {
				continue
			}
			return errIdle
		case err != nil:
			return err
		}
	}
}

// upgradeBody is the body of a 101 answer: the app's connection, which
// now carries the protocol switched to (see tunnel), after what its
// reader buffered.
type upgradeBody struct {
	*responseBody
	conn net.Conn
	br   *bufio.Reader
}

// Close ends the upgraded conversation on the app's side and releases
// the member.
func (u *upgradeBody) Close() error {
	if u.closed {
		return nil
	}
	u.closed = true
	u.conn.Close()
	u.m.Release()
	return nil
}
