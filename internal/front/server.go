package front

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/h2"
	"github.com/gatehouse/gatehouse/internal/peek"
)

// Options are the public server's limits. Zero values mean the defaults
// named on each.
type Options struct {
	// HeadTimeout bounds reading a request head from its first byte; past
	// it the client gets 408. Default 30 s.
	HeadTimeout time.Duration
	// KeepaliveTimeout bounds waiting for the next request on a keep-alive
	// connection. Default 2 minutes.
	KeepaliveTimeout time.Duration
	// BodyTimeout bounds the wait between two reads of a request body;
	// past it the read fails with os.ErrDeadlineExceeded. Default 60 s.
	BodyTimeout time.Duration
	// HeadLimit is the largest request head read, in bytes; past it the
	// client gets 431. Default 64 KiB.
	HeadLimit int
	// ConnectionBuffer bounds the memory one connection's bodies held
	// ahead of their reader take (Exchange.Buffered). Default 1 MiB.
	ConnectionBuffer int64
	// SendTimeout bounds each write of a response to the client; past it
	// the connection closes. Over TLS (tlsSocket) and HTTP/2 a write may
	// take up to half as long again, and what TLS writes of its own (a
	// KeyUpdate's reply) is bounded too, from when it starts. Default
	// 60 s.
	SendTimeout time.Duration
	// MaxConnections bounds the connections served at once. Past it a
	// new connection takes the slot of the kept-alive one that has waited
	// longest for its next request (ended, after the one request its
	// client may have begun as it was chosen), or, with none idle, waits
	// for a slot (more wait in the kernel's accept queue). 0 means no
	// bound.
	MaxConnections int
	// MaxConnectionsPerIP bounds the connections one client address
	// holds at once, so that a single peer cannot take every slot: past
	// it, that client's connection idle longest is ended to make room,
	// or, with none idle, the new connection is closed at once. 0 means
	// no bound. Peers Exempt says are not bounded (trusted proxies, whose
	// connections carry many clients).
	MaxConnectionsPerIP int
	Exempt              func(ip netip.Addr) bool
	// ErrorLog receives panics recovered while serving; nil discards them.
	ErrorLog *log.Logger
	// TLS, when set, makes the listener HTTPS with this config (which
	// the server does not change): each connection's handshake must end
	// within HeadTimeout. A client that negotiates "h2" (NextProtos
	// must offer it) is served HTTP/2; "acme-tls/1" connections end after
	// the handshake, which was all the ACME validation needed.
	TLS *tls.Config
	// H2C serves a plain connection that opens with the HTTP/2 preface
	// (prior knowledge) as HTTP/2. Default false: such a client is told in
	// HTTP/2 that h2c is off.
	H2C bool
	// HSTS, when set, is the Strict-Transport-Security value given to
	// every answer over TLS that has none of its own.
	HSTS string
}

func (o *Options) defaults() {
	if o.HeadTimeout <= 0 {
		o.HeadTimeout = 30 * time.Second
	}
	if o.KeepaliveTimeout <= 0 {
		o.KeepaliveTimeout = 2 * time.Minute
	}
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = 60 * time.Second
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 60 * time.Second
	}
	if o.ConnectionBuffer <= 0 {
		o.ConnectionBuffer = 1 << 20
	}
	if o.HeadLimit <= 0 {
		o.HeadLimit = 64 << 10
	}
	if o.ErrorLog == nil {
		o.ErrorLog = log.New(io.Discard, "", 0)
	}
}

// Server is the public server: HTTP/1.1 (and 1.0) on its own connection
// loop (conn), parsed into structures reused for the connection's life
// and answered without net/http's per-request background read, request
// clone and header copies; HTTP/2 over TLS or h2c through package h2
// (h2.go).
// Every request, whatever its protocol, reaches the Handler as an
// Exchange.
type Server struct {
	h     Handler
	opts  Options
	slots chan struct{} // one per connection served; nil: no bound

	mu    sync.Mutex
	conns map[*conn]struct{}
	// perIP counts the connections of each client address, under
	// MaxConnectionsPerIP.
	perIP map[netip.Addr]int
	// tunnels are the connections switched to another protocol (a
	// WebSocket): Shutdown does not wait for them, Close closes them.
	tunnels map[*conn]struct{}
	// lns are the listeners Serve accepts on (Serve may be called more
	// than once): the drain closes them all, and done waits for each
	// loop to return.
	lns     map[net.Listener]struct{}
	closing atomic.Bool
	// serving counts the Serve loops running: a connection Serve has
	// accepted as Shutdown closes the listener is still tracked and
	// served, and done waits for it (see track).
	serving int
	// stopped is closed by Close: from then on nothing accepted is
	// served.
	stopped chan struct{}
	// drained is closed once the shutdown began and no connection it
	// waits for is left: a connection accepted then that waits for a
	// slot waits no more (the slots left are the tunnels', which the
	// drain does not wait for).
	drained chan struct{}
	// lameDuck: still serving, but every HTTP/1 answer says Connection:
	// close, so that keep-alive clients reconnect, through a load
	// balancer that by then sends them elsewhere (SetLameDuck).
	lameDuck atomic.Bool
	done     chan struct{} // closed when the last connection ends after Shutdown, and Serve has returned

	// The HTTP/2 side (see h2.go): h2 serves each connection and tells
	// them all to go away.
	h2      *h2.Server
	h2conns atomic.Int64
	// tlsErrors counts failed TLS handshakes; h2Floods and h2Resets the
	// HTTP/2 connections the guard ended (h2guard.go).
	tlsErrors atomic.Uint64
	h2Floods  atomic.Uint64
	h2Resets  atomic.Uint64

	// poll parks idle connections (park_linux.go): made at the
	// first parking, stopped by Close or a completed Shutdown; pollOff
	// once stopped, or when it could not be made.
	poll    *poller
	pollOff bool
	// pollRetry: the poller could not be made (EMFILE, ENOMEM); not
	// before this time again.
	pollRetry time.Time
}

// poller returns the server's poller, making it if need be; nil when
// there is none (stopped, or no epoll here).
func (s *Server) poller() *poller {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.poll == nil && !s.pollOff {
		if time.Now().Before(s.pollRetry) {
			return nil
		}
		p, err := newPoller()
		if err != nil {
			// No epoll here: never. Out of descriptors or memory (a
			// flood): the connections wait on their goroutines for a
			// second, and then parking is tried again.
			if errors.Is(err, errors.ErrUnsupported) || errors.Is(err, syscall.ENOSYS) {
				s.pollOff = true
			} else {
				s.pollRetry = time.Now().Add(time.Second)
			}
			return nil
		}
		s.poll = p
	}
	if s.pollOff {
		return nil
	}
	return s.poll
}

// stopPoller closes the parked connections and ends the poller; later
// idle connections wait on their own goroutines.
func (s *Server) stopPoller() {
	s.mu.Lock()
	p := s.poll
	s.pollOff = true
	s.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// SetLameDuck turns lame-duck mode on or off: while on, the server
// serves as before but closes each HTTP/1 connection after its answer
// (with Connection: close), and turning it on tells the HTTP/2
// connections open then to go away (GOAWAY: their open streams finish,
// their clients open new connections for the next requests). A node
// about to leave a load balancer's rotation turns it on so that no
// client keeps a connection to it that the balancer would reuse after it
// is gone. (An HTTP/2 connection opened while it is on is told at the
// drain.)
func (s *Server) SetLameDuck(on bool) {
	if s.lameDuck.Swap(on) != on && on {
		s.goAwayH2()
	}
}

// New returns the public server for h.
func New(h Handler, opts Options) *Server {
	opts.defaults()
	s := &Server{h: h, opts: opts, conns: map[*conn]struct{}{}, tunnels: map[*conn]struct{}{}, perIP: map[netip.Addr]int{},
		done: make(chan struct{}), stopped: make(chan struct{}), drained: make(chan struct{}), lns: map[net.Listener]struct{}{}}
	if opts.MaxConnections > 0 {
		s.slots = make(chan struct{}, opts.MaxConnections)
	}
	s.newH2()
	return s
}

// TLSHandshakeErrors is how many TLS handshakes have failed.
func (s *Server) TLSHandshakeErrors() uint64 { return s.tlsErrors.Load() }

// H2FloodsEnded is how many HTTP/2 connections were ended (GOAWAY
// ENHANCE_YOUR_CALM) for a flood of frames that ask for no request.
func (s *Server) H2FloodsEnded() uint64 { return s.h2Floods.Load() }

// H2RapidResetsEnded is how many HTTP/2 connections were ended (GOAWAY
// ENHANCE_YOUR_CALM) for resetting the streams they open as they open
// them.
func (s *Server) H2RapidResetsEnded() uint64 { return s.h2Resets.Load() }

// Serve accepts connections on ln until Shutdown or Close; it returns
// http.ErrServerClosed then, like net/http.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.serving++
	s.mu.Unlock()
	leave := sync.OnceFunc(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.serving--
		delete(s.lns, ln)
		s.doneIfDrained()
	})
	defer leave()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			if retryableAccept(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			leave()
			s.Close()
			return err
		}
		backoff = 0
		ip, ok := s.admitPeer(c)
		if !ok {
			c.Close()
			continue
		}
		if !s.takeSlot() {
			s.leavePeer(ip)
			c.Close()
			return http.ErrServerClosed
		}
		if s.opts.TLS != nil {
			c = tls.Server(newTLSSocket(c, s.opts.SendTimeout), s.opts.TLS) // the handshake runs on the connection's goroutine
		}
		fc := newConn(s, c)
		fc.ip = ip
		if !s.track(fc, true) {
			c.Close()
			s.freeSlot()
			s.leavePeer(ip)
			continue
		}
		go fc.serve()
	}
}

// takeSlot takes a connection slot for a connection just accepted. When
// none is free, the connection idle longest between requests is ended
// to make room (a connection waiting for its next request is not work:
// nginx reuses them the same way), or, with none idle, the new one waits
// for a slot. false once the server closes.
func (s *Server) takeSlot() bool {
	if s.slots == nil {
		return true
	}
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	for {
		// A connection that just answered is still at work for a
		// moment (its last write waits for the next request, parkAfter
		// at most): one that goes idle meanwhile is taken on the next
		// round. One ended frees its slot at once (or after the request
		// its client began as it was chosen), but not too long is waited
		// for it before another is taken.
		wait := parkAfter
		if s.reclaim(netip.Addr{}) {
			wait = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case s.slots <- struct{}{}:
			t.Stop()
			return true
		case <-s.stopped:
			t.Stop()
			return false
		case <-s.drained:
			// The last connection ended: its slot, freed before it
			// was untracked, is taken if it is still free.
			t.Stop()
			select {
			case s.slots <- struct{}{}:
				return true
			default:
				return false
			}
		case <-t.C:
		}
	}
}

// admitPeer counts a new connection against its client address's
// MaxConnectionsPerIP; false when the address is at its bound and none of
// its connections is idle to make room. ip is the address counted (the
// zero Addr when none is: no bound, an exempt peer). The address is the
// socket's peer, before any PROXY protocol header (whose load balancer is
// a trusted proxy, exempt).
func (s *Server) admitPeer(c net.Conn) (netip.Addr, bool) {
	limit := s.opts.MaxConnectionsPerIP
	if limit <= 0 {
		return netip.Addr{}, true
	}
	if r, ok := c.(interface{ Raw() net.Conn }); ok {
		c = r.Raw()
	}
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}, true // a unix socket: no address to bound
	}
	ip := ap.Addr().Unmap()
	if s.opts.Exempt != nil && s.opts.Exempt(ip) {
		return netip.Addr{}, true
	}
	s.mu.Lock()
	at := s.perIP[ip] >= limit
	s.mu.Unlock()
	if at && !s.reclaim(ip) {
		return netip.Addr{}, false
	}
	s.mu.Lock()
	s.perIP[ip]++
	s.mu.Unlock()
	return ip, true
}

// leavePeer uncounts a connection of ip (see admitPeer).
func (s *Server) leavePeer(ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

// reclaim ends the kept-alive connection that has waited longest for
// its next request, on its goroutine (whose wait it cuts short) or parked
// (closed), of client ip (any client: the zero Addr); its slot frees when
// it ends. It reports whether it found one. One whose client has sent
// bytes not yet read is not idle: no connection is taken this round, and
// the next finds it at work.
func (s *Server) reclaim(ip netip.Addr) bool {
	s.mu.Lock()
	var oldest *conn
	for fc := range s.conns {
		at := fc.idleAt.Load()
		if at == 0 || ip.IsValid() && fc.ip != ip {
			continue
		}
		if st := fc.state.Load(); (st == connIdle && !midRecord(fc.c) || st == connParked) && (oldest == nil || at < oldest.idleAt.Load()) {
			oldest = fc
		}
	}
	p := s.poll
	s.mu.Unlock()
	switch {
	case oldest == nil, oldest.state.Load() == connIdle && pendingRequest(oldest):
		return false
	case oldest.stopWait():
		return true // its goroutine ends it, or answers a request begun first
	case p != nil:
		return p.closeConn(oldest)
	}
	return false
}

func (s *Server) freeSlot() {
	if s.slots != nil {
		<-s.slots
	}
}

// retryableAccept reports whether an accept error passes: out of file
// descriptors or memory for a moment, or a connection aborted before it
// was accepted. The gateway must not stop serving over it.
func retryableAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// track adds or removes a connection; adding fails once Close began.
// A connection Serve accepted as Shutdown began (the listener closed
// between the accept and this) is added and served, as the drain's last
// (Connection: close): its client has sent its request, and a process
// that shares the socket (an upgrade's successor) never sees it. Closed
// without a word, the request would be lost.
func (s *Server) track(fc *conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if add {
		select {
		case <-s.stopped:
			return false
		default:
		}
		s.conns[fc] = struct{}{}
		return true
	}
	delete(s.conns, fc)
	delete(s.tunnels, fc)
	s.doneIfDrained()
	return true
}

// doneIfDrained closes done once the shutdown began, no connection is
// left and no Serve loop can add one. Under mu.
func (s *Server) doneIfDrained() {
	if !s.closing.Load() || len(s.conns) != 0 {
		return
	}
	select {
	case <-s.drained:
	default:
		close(s.drained)
	}
	if s.serving == 0 {
		s.closeDone()
	}
}

// tunnel moves a connection to the tunnels, which Shutdown does not wait
// for: a conversation in another protocol has no end Shutdown could wait
// for, and it ends with Close or with the app's side of it.
func (s *Server) tunnel(fc *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, fc)
	s.tunnels[fc] = struct{}{}
	s.doneIfDrained()
}

func (s *Server) closeDone() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
}

// Shutdown stops accepting, closes idle connections, and waits for the
// requests in flight to finish (their responses say Connection: close),
// until ctx ends; then it returns ctx's error and the caller may Close.
// Upgraded conversations (tunnels) are not waited for, as net/http does
// not wait for hijacked connections.
func (s *Server) Shutdown(ctx context.Context) error { return s.ShutdownIdleGrace(ctx, 0) }

// ShutdownIdleGrace is Shutdown that leaves idle keep-alive connections
// open for grace: a request that comes on one meanwhile is served and
// answered with Connection: close. Closing an idle connection races with
// a client that sends on it at that moment, which fails a request that
// the client cannot safely send again (a POST); while another process
// accepts on the same socket (an upgrade), the clients that come back
// within grace are all told to reconnect instead.
func (s *Server) ShutdownIdleGrace(ctx context.Context, grace time.Duration) error {
	s.beginClose()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	closeIdleAt := time.Now().Add(grace)
	for {
		if !time.Now().Before(closeIdleAt) {
			s.closeIdle()
		}
		s.goAwayH2()
		select {
		case <-s.done:
			s.stopPoller()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listener and every connection at once. It waits for
// the connections' goroutines only for closeWait: a response streaming
// from a silent app ends when the app's connection does, which is after
// gatehouse stops the app, and that comes after the front is closed.
func (s *Server) Close() error {
	s.beginClose()
	s.stopPoller()
	s.mu.Lock()
	select {
	case <-s.stopped:
	default:
		close(s.stopped)
	}
	for fc := range s.conns {
		// Socket first: no close_notify from this goroutine, which
		// could block, and would come between an answer's records
		// and their send (tlsSocket.sendWait).
		closeSocketFirst(fc.c)
	}
	for fc := range s.tunnels {
		closeSocketFirst(fc.c)
	}
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-time.After(closeWait):
	}
	return nil
}

const closeWait = time.Second

// pendingRequest reports whether fc's client has sent bytes not read
// yet: at the socket (under TLS, records of a request), or, under TLS,
// part of a record TLS has begun.
func pendingRequest(fc *conn) bool {
	return peek.Pending(socketOf(fc.c)) == peek.Data || midRecord(fc.c)
}

// closeSocketFirst closes a connection, under TLS its socket first, so
// that close_notify fails at once: behind a client that does not read,
// crypto/tls would give that write 5 s, which the caller (the poller, the
// goroutine of a connection whose wait was cut short, which Shutdown
// waits for, Close or CloseTunnels) cannot spare. An idle connection's
// client expects no more (nginx sends none on a keep-alive timeout
// either), and Close and CloseTunnels end connections abruptly.
func closeSocketFirst(c net.Conn) {
	if _, ok := c.(*tls.Conn); ok {
		socketOf(c).Close()
	}
	c.Close()
}

// socketOf is the connection under c's TLS, if any: what a look at the
// socket looks at.
func socketOf(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
		if s, ok := c.(*tlsSocket); ok {
			return s.Conn
		}
	}
	return c
}

// beginClose stops accepting.
func (s *Server) beginClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Swap(true) {
		return
	}
	for ln := range s.lns {
		ln.Close()
	}
	s.doneIfDrained()
}

// CloseTunnels closes the connections switched to another protocol
// (WebSockets), which Shutdown does not wait for: after a Shutdown, the
// stop closes them before it stops the apps, so that their instances are
// not kept waiting for them, and their ends are logged.
func (s *Server) CloseTunnels() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for fc := range s.tunnels {
		// Socket first, as Close: a TLS close_notify to a client that
		// stopped reading would wait 5 s, tunnel after tunnel.
		closeSocketFirst(fc.c)
	}
}

// closeIdle ends the connections waiting for a request: it cuts short
// the wait of those on their goroutines, which end them unless a request
// had begun, and closes the parked ones. A connection whose client has
// sent bytes its goroutine has not read yet is not idle, and is left to
// read them (its goroutine would find them after a cut too).
func (s *Server) closeIdle() {
	s.mu.Lock()
	for fc := range s.conns {
		if st := fc.state.Load(); (st == connIdle || st == connStopping) && pendingRequest(fc) {
			continue // its goroutine reads it next, and answers with close
		}
		fc.stopWait()
	}
	p := s.poll
	s.mu.Unlock()
	if p != nil {
		p.closeAll()
	}
}
