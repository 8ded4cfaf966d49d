package gateway

import (
	"context"
	"sync"

	"github.com/gatehouse/gatehouse/internal/spool"
)

// aheadBody reads an answer of unknown length from the app on its own
// goroutine, up to limit bytes ahead of the client, in memory within the
// budgets (beyond them, one piece ahead): the pieces are written as they
// come, as a stream's must be, and the app is let go when it has sent
// the last one, however far behind the client is.
type aheadBody struct {
	src   *responseBody
	limit int64
	mem   spool.Memory
	stop  context.CancelFunc
	done  chan struct{} // closed when the reader has let src go

	mu      sync.Mutex
	cond    sync.Cond
	queue   [][]byte // pieces read, not yet taken; chunk buffers
	queued  int64
	charged int64 // of queued, what the budgets were charged
	off     int   // of queue[0], taken so far
	err     error // how the app's body ended; io.EOF when it did
	closed  bool
	// started: the reader runs. It starts at the first Read, after the
	// answer's head was written: until then the head's writer reads the
	// trailer fields the reader fills.
	started bool
}

func newAheadBody(ctx context.Context, src *responseBody, limit int64, process, conn *spool.Budget) *aheadBody {
	ctx, stop := context.WithCancel(ctx)
	a := &aheadBody{src: src, limit: limit, mem: spool.Memory{process, conn}, stop: stop, done: make(chan struct{})}
	a.cond.L = &a.mu
	// The app's reads are interrupted when the client leaves or the
	// answer is closed early, rather than at the app's next write.
	if src.unwatch != nil && !src.unwatch() {
		// Interrupted already (the client left): the connection is
		// spent, its reads fail, and done must not take it back.
		src.unwatch = spent
		return a
	}
	src.unwatch = nil
	src.watch(ctx)
	return a
}

// spent is the unwatch of a body whose interruption already happened.
func spent() bool { return false }

// read is the reader goroutine: it ends when the app's body does, or
// when the answer is closed.
func (a *aheadBody) read() {
	defer close(a.done)
	defer a.src.Close()
	for {
		buf, ok := a.room()
		if !ok {
			return
		}
		n, err := a.src.Read(buf)
		a.mu.Lock()
		if n > 0 {
			a.queue = append(a.queue, buf[:n])
			a.queued += int64(n)
		} else {
			putChunk(buf)
		}
		if err != nil {
			a.err = err
		}
		a.cond.Broadcast()
		a.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// room waits until another piece may be read ahead: always when nothing
// is queued, else within limit and what the budgets allow. false when
// the answer was closed.
func (a *aheadBody) room() ([]byte, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for !a.closed {
		if a.queued == 0 {
			return getChunk(), true
		}
		if a.queued < a.limit && a.takeChunk() {
			return getChunk(), true
		}
		a.cond.Wait()
	}
	return nil, false
}

func (a *aheadBody) Read(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.started {
		a.started = true
		go a.read()
	}
	for len(a.queue) == 0 && a.err == nil {
		a.cond.Wait()
	}
	if len(a.queue) == 0 {
		return 0, a.err
	}
	c := a.queue[0]
	n := copy(p, c[a.off:])
	a.off += n
	if a.off == len(c) {
		a.queue[0] = nil
		a.queue = a.queue[1:]
		a.off = 0
		a.queued -= int64(len(c))
		if a.charged > 0 {
			// Each piece beyond the first was charged a chunk.
			a.mem.Give(aheadChunk)
			a.charged -= aheadChunk
		}
		putChunk(c)
		a.cond.Broadcast()
	}
	return n, nil
}

// Close stops the reader, lets the app go if it has not yet, and waits
// for the reader to end: the response body it reads is the request
// state's.
func (a *aheadBody) Close() error {
	a.mu.Lock()
	a.closed = true
	started := a.started
	a.cond.Broadcast()
	a.mu.Unlock()
	a.stop()
	if !started {
		a.src.Close()
		return nil
	}
	<-a.done
	for _, c := range a.queue {
		putChunk(c)
	}
	a.queue = nil
	a.mem.Give(a.charged)
	a.charged = 0
	return nil
}

// aheadChunk is the size of the pieces read ahead.
const aheadChunk = 32 << 10

func getChunk() []byte  { return spool.Buffer(aheadChunk) }
func putChunk(b []byte) { spool.Release(b) }

// takeChunk charges one more piece read ahead to the budgets.
func (a *aheadBody) takeChunk() bool {
	if !a.mem.Take(aheadChunk) {
		return false
	}
	a.charged += aheadChunk
	return true
}
