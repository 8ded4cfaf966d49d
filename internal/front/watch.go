package gateway

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// clientCtx is the context of a front connection's requests: it is done
// when the client went away. Nothing watches the client while a request
// is quick. A request held for an instance waits on holdContext's Done,
// which starts a watcher; a streamed response starts one too; the wait for
// the app's first byte peeks at the socket between its slices
// (clientGone), and an answer that took a while peeks once before it is
// written.
//
// Done itself starts nothing: contexts derived from this one (the dialer's)
// call it from goroutines of their own, and the watcher may only start on
// the connection's goroutine, which owns the reads.
type clientCtx struct {
	fc   *frontConn
	gone atomic.Bool

	mu        sync.Mutex
	done      chan struct{}
	watching  bool
	stopping  atomic.Bool
	watchDone chan struct{}
}

func (c *clientCtx) Deadline() (time.Time, bool) { return time.Time{}, false }

func (c *clientCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.gone.Load() {
			close(c.done)
		}
	}
	return c.done
}

// holdCtx is the context a request is held under: asking for its Done
// starts the client watcher. Only the pool's Acquire, on the connection's
// goroutine, uses it.
type holdCtx struct{ *clientCtx }

func (h holdCtx) Done() <-chan struct{} {
	h.watch()
	return h.clientCtx.Done()
}

// holdContext returns the context to hold a request under.
func holdContext(ctx context.Context) context.Context {
	if c, ok := ctx.(*clientCtx); ok {
		return holdCtx{c}
	}
	return ctx
}

// watch starts the client watcher if it can run: on the connection's
// goroutine only.
func (c *clientCtx) watch() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.startWatchLocked()
}

func (c *clientCtx) Err() error {
	if c.gone.Load() {
		return context.Canceled
	}
	return nil
}

func (c *clientCtx) Value(key any) any {
	if key == (stateKey{}) {
		return c.fc.st
	}
	return nil
}

// cancel marks the client gone.
func (c *clientCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone.Swap(true) {
		return
	}
	if c.done != nil {
		close(c.done)
	}
}

var _ context.Context = (*clientCtx)(nil)

// quiet reports whether the client has nothing more to send for the
// current request: only then is a read from it a sign of its going away.
func (c *clientCtx) quiet() bool {
	return c.fc.body.n == 0 && c.fc.br.Buffered() == 0 && !c.fc.stashed
}

func (c *clientCtx) startWatchLocked() {
	if c.watching || c.gone.Load() || !c.quiet() {
		return
	}
	c.watching = true
	c.stopping.Store(false)
	c.watchDone = make(chan struct{})
	go c.watchClient(c.watchDone)
}

// watchClient reads the client connection while a request waits: EOF or an
// error means the client is gone; a byte is the start of a pipelined
// request, kept for the next parse.
func (c *clientCtx) watchClient(done chan struct{}) {
	defer close(done)
	var b [1]byte
	n, err := c.fc.conn.Read(b[:])
	if n == 1 {
		c.fc.stash, c.fc.stashed = b[0], true
		return
	}
	if err != nil && !c.stopping.Load() {
		c.cancel()
	}
}

// stopWatch ends the watcher, if one runs, before the connection is read
// again.
func (c *clientCtx) stopWatch() {
	c.mu.Lock()
	watching, done := c.watching, c.watchDone
	c.watching = false
	c.mu.Unlock()
	if !watching {
		return
	}
	c.stopping.Store(true)
	c.fc.conn.SetReadDeadline(aLongTimeAgo)
	<-done
	c.fc.conn.SetReadDeadline(time.Time{})
}

var aLongTimeAgo = time.Unix(1, 0)

// check peeks at the client's socket without blocking: an orderly close
// or a reset there means the client is gone.
func (c *clientCtx) check() bool {
	if c.gone.Load() {
		return true
	}
	c.mu.Lock()
	watching := c.watching
	c.mu.Unlock()
	if watching || !c.quiet() || c.fc.raw == nil {
		return false
	}
	var n int
	var err error
	var b [1]byte
	c.fc.raw.Read(func(fd uintptr) bool {
		n, _, err = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	if (n == 0 && err == nil) || (err != nil && err != syscall.EAGAIN && err != syscall.EINTR) {
		c.cancel()
		return true
	}
	return false
}
