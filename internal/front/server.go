package gateway

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Front is the public HTTP/1.1 server. Plain keep-alive requests, the
// traffic a gateway carries almost all of the time, are served by its own
// connection loop (frontConn): parsed into structures reused for the
// connection's life, forwarded by the same retry loop and classifier as
// every other request, and answered without net/http's per-request
// background read, request clone and header copies.
//
// Anything else (an upgrade, Expect: 100-continue, a chunked upload,
// HTTP/1.0, a head the strict parser does not accept) hands the whole
// connection, bytes already read included, to a net/http.Server running
// the Gateway's ServeHTTP, whose ReverseProxy and error handling are the
// reference. A malformed request thus gets net/http's own 400.
type Front struct {
	gw       *Gateway
	fallback *http.Server
	handoff  *connListener
	opts     FrontOptions

	mu       sync.Mutex
	conns    map[*frontConn]struct{}
	ln       net.Listener
	closing  atomic.Bool
	done     chan struct{} // closed when the last connection ends after Shutdown
	fallDone chan struct{} // closed when the fallback server's Serve returns
}

// FrontOptions are the public server's timeouts.
type FrontOptions struct {
	// ReadHeaderTimeout bounds reading a request head once its first byte
	// arrived. Zero means 30 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout bounds waiting for the next request on a keep-alive
	// connection. Zero means 2 minutes.
	IdleTimeout time.Duration
}

// NewFront returns the public server for gw.
func NewFront(gw *Gateway, opts FrontOptions) *Front {
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = 30 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 2 * time.Minute
	}
	f := &Front{gw: gw, opts: opts, conns: map[*frontConn]struct{}{}, done: make(chan struct{}), fallDone: make(chan struct{})}
	f.fallback = &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	return f
}

// Serve accepts connections on ln until Shutdown or Close; it returns
// http.ErrServerClosed then, like net/http.
func (f *Front) Serve(ln net.Listener) error {
	f.mu.Lock()
	if f.closing.Load() {
		f.mu.Unlock()
		return http.ErrServerClosed
	}
	f.ln = ln
	f.handoff = newConnListener(ln.Addr())
	f.mu.Unlock()
	go func() {
		defer close(f.fallDone)
		f.fallback.Serve(f.handoff)
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if f.closing.Load() {
				return http.ErrServerClosed
			}
			if retryableAccept(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			f.Close()
			return err
		}
		backoff = 0
		fc := newFrontConn(f, c)
		if !f.track(fc, true) {
			c.Close()
			continue
		}
		go fc.serve()
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

// track adds or removes a connection; adding fails once shutdown began.
func (f *Front) track(fc *frontConn, add bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if add {
		if f.closing.Load() {
			return false
		}
		f.conns[fc] = struct{}{}
		return true
	}
	delete(f.conns, fc)
	if f.closing.Load() && len(f.conns) == 0 {
		f.closeDone()
	}
	return true
}

func (f *Front) closeDone() {
	select {
	case <-f.done:
	default:
		close(f.done)
	}
}

// Shutdown stops accepting, closes idle connections, and waits for the
// requests in flight to finish (their responses say Connection: close),
// until ctx ends; then it returns ctx's error and the caller may Close.
func (f *Front) Shutdown(ctx context.Context) error {
	f.beginClose()
	fallErr := make(chan error, 1)
	go func() { fallErr <- f.fallback.Shutdown(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		f.closeIdle()
		select {
		case <-f.done:
			err := <-fallErr
			f.waitFallback()
			return err
		case <-ctx.Done():
			<-fallErr
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// Close closes the listener and every connection at once. It waits for
// the connections' goroutines only for closeWait: a response streaming
// from a silent app ends when the app's connection does, which is after
// gatehouse stops the app, and that comes after the front is closed.
func (f *Front) Close() error {
	f.beginClose()
	f.fallback.Close()
	f.mu.Lock()
	for fc := range f.conns {
		fc.conn.Close()
	}
	f.mu.Unlock()
	select {
	case <-f.done:
	case <-time.After(closeWait):
	}
	f.waitFallback()
	return nil
}

const closeWait = time.Second

func (f *Front) beginClose() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing.Swap(true) {
		return
	}
	if f.ln != nil {
		f.ln.Close()
	}
	if f.handoff != nil {
		f.handoff.Close()
	}
	if len(f.conns) == 0 {
		f.closeDone()
	}
}

// waitFallback waits for the fallback server's Serve to return, when it
// was started.
func (f *Front) waitFallback() {
	f.mu.Lock()
	started := f.handoff != nil
	f.mu.Unlock()
	if started {
		<-f.fallDone
	}
}

// closeIdle closes the connections waiting for a request.
func (f *Front) closeIdle() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for fc := range f.conns {
		if fc.state.CompareAndSwap(connIdle, connClosed) {
			fc.conn.Close()
		}
	}
}

// connListener is the fallback server's listener: it accepts the
// connections the front hands over.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// give hands c to the fallback server; false once it is closed.
func (l *connListener) give(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
