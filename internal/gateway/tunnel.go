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
)

// tunnel answers an upgrade the app accepted: the app's 101 goes to the
// client, and from then on the connection carries the protocol they
// switched to (a WebSocket), copied both ways until either side ends it
// or neither sends anything for the app's tunnel_idle_timeout. The
// member is released, and its max_inflight slot freed, when the tunnel
// ends (a one-request-at-a-time app is busy with it all along).
func (g *Gateway) tunnel(x *front.Exchange, a *appProxy, rw *responseWriter, resp *http.Response) {
	ub := resp.Body.(*upgradeBody)
	defer ub.Close()
	to := resp.Header["Upgrade"]
	removeHopByHop(resp.Header)
	resp.Header["Upgrade"] = to
	x.W.UseHeader(resp.Header)
	rw.WriteHeader(http.StatusSwitchingProtocols)
	client, pending, err := x.Tunnel()
	if err != nil {
		return // the client's connection broke as the 101 went out
	}
	defer client.Close()
	ub.m.TunnelOpened()
	defer ub.m.TunnelClosed()
	idle := a.cfg.Load().Limits.TunnelIdleTimeout.D()
	rw.bytes += relay(client, pending, ub.conn, ub.br, idle)
}

// halfCloseLinger is how long a tunnel lasts after one side ended its
// half of the conversation (HAProxy's timeout client-fin): the other may
// still have last words, but a silent one must not hold the tunnel (and
// its instance) open for ever.
const halfCloseLinger = time.Second

// relay copies between the client's connection (after the bytes it sent
// already, pending) and the app's (after what its reader buffered) until
// one side ends its half and the other follows within halfCloseLinger, a
// side fails, or neither sends anything for idle. It returns the bytes
// the client was sent.
func relay(client net.Conn, pending []byte, app net.Conn, appBuf *bufio.Reader, idle time.Duration) int64 {
	var last atomic.Int64 // when a byte last went either way (monotonic)
	start := time.Now()
	up := pipe{dst: app, src: client, r: io.MultiReader(bytes.NewReader(pending), client), idle: idle, last: &last, start: start}
	down := pipe{dst: client, src: app, r: appBuf, idle: idle, last: &last, start: start}
	ended := make(chan error, 2)
	go func() { ended <- up.run() }()
	go func() { ended <- down.run() }()
	err := <-ended
	if err == nil {
		// One side ended its half cleanly (and the other was told): the
		// other may answer, briefly.
		t := time.NewTimer(halfCloseLinger)
		select {
		case <-ended:
			t.Stop()
			client.Close()
			app.Close()
			return down.n
		case <-t.C:
		}
	}
	client.Close()
	app.Close()
	<-ended
	return down.n
}

// pipe is one direction of a tunnel.
type pipe struct {
	dst, src net.Conn
	r        io.Reader // src, after what was read of it already
	idle     time.Duration
	last     *atomic.Int64
	start    time.Time
	n        int64
}

// errIdle: neither side sent anything for the tunnel's idle timeout.
var errIdle = errors.New("tunnel idle")

// run copies until src ends (nil, after passing the half-close on to
// dst), or a read or write fails, or the tunnel is idle.
func (p *pipe) run() error {
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	for {
		// Idle from the last byte either way, not from this read.
		p.src.SetReadDeadline(p.start.Add(time.Duration(p.last.Load()) + p.idle))
		n, err := p.r.Read(buf)
		if n > 0 {
			p.last.Store(int64(time.Since(p.start)))
			// A side that stops reading holds the tunnel no longer than
			// a silent one.
			p.dst.SetWriteDeadline(time.Now().Add(p.idle))
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
			// is too.
			if since := time.Since(p.start) - time.Duration(p.last.Load()); since < p.idle {
				continue
			}
			return errIdle
		case err != nil:
			return err
		}
	}
}
