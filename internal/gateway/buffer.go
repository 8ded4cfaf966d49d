package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/spool"
)

// holdAnswer lets the app's connection and its instance's slot go as
// soon as the app has sent its answer, whatever the client's speed: a
// client that reads slowly, or not at all, then holds gatehouse's memory
// (or a temporary file), never the app's worker. An answer of known
// length up to limit is read whole before any of it is written; one of
// unknown length is read ahead of the client by up to limit bytes
// (aheadBody), its pieces written as they come. A longer answer, an
// event stream and an upgrade stream as before.
func (a *appProxy) holdAnswer(x *front.Exchange, st *reqState, resp *http.Response, limit int64) {
	b, ok := resp.Body.(*responseBody)
	if !ok || limit <= 0 || resp.ContentLength > limit || resp.ContentLength == 0 || resp.Body == http.NoBody || isEventStream(resp.Header) {
		return
	}
	if resp.ContentLength < 0 {
		resp.Body = newAheadBody(x.Req.Context(), b, limit, a.buffers, x.Buffered)
		return
	}
	s := &st.answer
	s.Init("", a.buffers, x.Buffered, a.disk)
	h := &st.heldAnswer
	h.fill = watchedReads{b: b, x: x}
	ended, err := s.Fill(&h.fill, resp.ContentLength, resp.ContentLength)
	*h = heldBody{s: s, err: err}
	switch {
	case err != nil && !errors.Is(err, spool.ErrSpill):
		// The app's body broke off: what came is written, then the
		// answer is cut short as a streamed one would be (responseBody
		// noted it).
		b.Close()
	case ended:
		b.Close()
		h.err = nil
	default:
		// No room left to spill to: the rest streams from the app, after
		// what was held.
		h.rest, h.err = b, nil
		b.watch(x.Req.Context())
	}
	resp.Body = h
}

// watchedReads reads an answer being held: from its second read on (the
// app sent part of it and may stall in the middle) a client that leaves
// lets the instance go, as copyResponse does for a body it streams. The
// first is not watched: most answers come whole in it.
type watchedReads struct {
	b     *responseBody
	x     *front.Exchange
	reads int
}

func (r *watchedReads) Read(p []byte) (int, error) {
	if r.reads == 1 && r.b.pc != nil {
		r.x.Watch()
		r.b.watch(r.x.Req.Context())
	}
	r.reads++
	return r.b.Read(p)
}

// heldBody is an answer read ahead (holdAnswer): what the spool holds,
// then the rest from the app, or the error the app's body ended with.
type heldBody struct {
	s    *spool.Spool
	rest *responseBody
	err  error
	// fill reads the answer into s.
	fill watchedReads
}

func (h *heldBody) Read(p []byte) (int, error) {
	n, err := h.s.Read(p)
	if err != io.EOF {
		return n, err
	}
	switch {
	case h.rest != nil:
		return h.rest.Read(p)
	case h.err != nil:
		return n, h.err
	}
	return n, io.EOF
}

// whole reports whether the answer is all in the spool.
func (h *heldBody) whole() bool { return h.rest == nil && h.err == nil }

// watch interrupts the reads of the rest from the app when ctx ends.
func (h *heldBody) watch(ctx context.Context) {
	if h.rest != nil {
		h.rest.watch(ctx)
	}
}

// Close lets the rest go; the spool is the request state's, closed with it.
func (h *heldBody) Close() error {
	if h.rest != nil {
		return h.rest.Close()
	}
	return nil
}

// aheadBody reads an answer of unknown length from the app on its own
// goroutine, up to limit bytes ahead of the client, in memory within the
// budgets (beyond them, one piece ahead): the pieces are written as they
// come, as a stream's must be, and the app is let go when it has sent
// the last one, however far behind the client is.
type aheadBody struct {
	src    *responseBody
	limit  int64
	charge [2]*spool.Budget
	stop   context.CancelFunc
	done   chan struct{} // closed when the reader has let src go

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
	a := &aheadBody{src: src, limit: limit, charge: [2]*spool.Budget{process, conn}, stop: stop, done: make(chan struct{})}
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
		if a.queued < a.limit && a.take(aheadChunk) {
			return getChunk(), true
		}
		a.cond.Wait()
	}
	return nil, false
}

// take charges n bytes to both budgets, or neither.
func (a *aheadBody) take(n int64) bool {
	if !a.charge[0].Take(n) {
		return false
	}
	if !a.charge[1].Take(n) {
		a.charge[0].Give(n)
		return false
	}
	a.charged += n
	return true
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
			a.charge[0].Give(aheadChunk)
			a.charge[1].Give(aheadChunk)
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
	a.charge[0].Give(a.charged)
	a.charge[1].Give(a.charged)
	a.charged = 0
	return nil
}

// aheadChunk is the size of the pieces read ahead.
const aheadChunk = 32 << 10

func getChunk() []byte  { return copyBuffers.Get()[:aheadChunk] }
func putChunk(b []byte) { copyBuffers.Put(b[:cap(b)]) }
