package front

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse/gatehouse/internal/peek"
)

// watcher finds out whether a connection's client went away. Nothing
// watches the client while a request is quick. A request held for an
// instance or streaming a response starts a read of the connection
// (start) that ends with the request (stop); the wait for the app's first
// byte peeks at the socket between its slices (check), and an answer that
// took a while peeks once before it is written. A client found gone
// cancels the connection's context, which is the requests' context.
type watcher struct {
	fc   *conn
	gone atomic.Bool

	mu       sync.Mutex
	watching bool
	stopping atomic.Bool
	done     chan struct{}
}

// quiet reports whether the client has nothing more to send for the
// current request: only then is a read from it a sign of its going away.
func (w *watcher) quiet() bool {
	fc := w.fc
	return fc.body.n == 0 && fc.readBuffered() == 0 && len(fc.pending) == 0
}

// start starts the watching read, on the connection's goroutine, which
// owns the reads.
func (w *watcher) start() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.watching || w.gone.Load() || !w.quiet() {
		return
	}
	w.watching = true
	w.stopping.Store(false)
	w.done = make(chan struct{})
	go w.read(w.done)
}

// read reads the client connection while a request waits: EOF or an error
// means the client is gone; a byte is the start of a pipelined request,
// kept for the next parse.
func (w *watcher) read(done chan struct{}) {
	defer close(done)
	fc := w.fc
	n, err := fc.c.Read(fc.pendingBuf[:])
	if n == 1 {
		fc.pending = fc.pendingBuf[:1]
		return
	}
	if err != nil && !w.stopping.Load() {
		w.cancel()
	}
}

// cancel marks the client gone.
func (w *watcher) cancel() {
	if !w.gone.Swap(true) {
		w.fc.cancel()
	}
}

// active reports whether the watching read runs.
func (w *watcher) active() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.watching
}

// stop ends the watching read, if one runs, before the connection is read
// again.
func (w *watcher) stop() {
	w.mu.Lock()
	watching, done := w.watching, w.done
	w.watching = false
	w.mu.Unlock()
	if !watching {
		return
	}
	w.stopping.Store(true)
	w.fc.c.SetReadDeadline(aLongTimeAgo)
	<-done
	w.fc.c.SetReadDeadline(time.Time{})
}

var aLongTimeAgo = time.Unix(1, 0)

// check peeks at the client's socket without blocking: an orderly close
// or a reset there means the client is gone.
func (w *watcher) check() bool {
	if w.gone.Load() {
		return true
	}
	w.mu.Lock()
	watching := w.watching
	w.mu.Unlock()
	if watching || !w.quiet() {
		return false
	}
	switch w.peeker().Look() {
	case peek.Closed:
		w.cancel()
		return true
	case peek.Data:
		// A pipelined request: the look took the poller's notice of it,
		// so the answer's write must not wait for one (primeSendWait).
		w.fc.short = false
	}
	return false
}

// peeker is the connection's Peeker, made at its first look: at the
// socket under TLS too, where a close is the client gone all the same
// (bytes there are records, and mean nothing to look at).
func (w *watcher) peeker() *peek.Peeker {
	fc := w.fc
	if fc.peek == nil {
		fc.peek = peek.New(socketOf(fc.c))
	}
	return fc.peek
}
