package gateway

import (
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/internal/front"
)

// removeHopByHop removes the hop-by-hop headers of a response, and those
// its Connection header names.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				delete(h, textproto.CanonicalMIMEHeaderKey(sf))
			}
		}
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
}

// copyResponse writes the app's response to the client: streamed
// responses (unknown length, event streams) are flushed after every read,
// others once at the end. A body that breaks is cut short on the client's
// side too (the connection closes), and classified by its reader.
func copyResponse(x *front.Exchange, rw *responseWriter, resp *http.Response) {
	defer resp.Body.Close()
	w := x.W
	removeHopByHop(resp.Header)
	w.UseHeader(resp.Header)
	if resp.ContentLength < 0 {
		// Only a chunked answer has trailers; a plain one is the pooled
		// request state's, which is gone when the writer ends.
		w.SetTrailer(&resp.Trailer)
	}
	rw.WriteHeader(resp.StatusCode)
	stream := resp.ContentLength < 0 || isEventStream(resp.Header)
	if stream {
		// The head goes out now: an event
		// stream's client must not wait for the first event to know it is
		// open. A client leaving the stream is watched for, and ends it
		// (see responseBody).
		w.Flush()
		x.Watch()
	}
	pool := copyBuffers
	if resp.ContentLength >= 0 && resp.ContentLength <= int64(smallCopyBuffers.size) {
		pool = smallCopyBuffers
	}
	buf := pool.Get()
	defer pool.Put(buf)
	for reads := 0; ; reads++ {
		if reads == 1 && !stream {
			// A body longer than one read may stall in the middle: from
			// now on a client leaving lets the instance go (streams were
			// watched from the start).
			x.Watch()
			if b, ok := resp.Body.(*responseBody); ok {
				b.watch(x.Req.Context())
			}
		}
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := rw.Write(buf[:n]); werr != nil {
				if !errors.Is(werr, front.ErrClientWrite) {
					w.Abort()
				}
				return
			}
			if stream {
				w.Flush()
			}
		}
		if err == io.EOF {
			return
		}
		if err != nil {
			w.Abort()
			return
		}
	}
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 17 && strings.EqualFold(ct[0][:17], "text/event-stream")
}

// responseWriter records what was sent to the client: the status and
// how many bytes of body.
type responseWriter struct {
	front.ResponseWriter
	status int
	bytes  int64
}

func (w *responseWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// copyBuffers lends the copy buffers of answers of unknown or large
// length.
var copyBuffers = &bufferPool{size: 32 << 10}

// smallCopyBuffers copy bodies of known length up to their size: most
// answers are small, and a 32 KiB buffer for each in flight was a tenth
// of the heap under load.
var smallCopyBuffers = &bufferPool{size: 4 << 10}

type bufferPool struct {
	p    sync.Pool
	size int
}

type copyBuffer struct{ b []byte }

func (bp *bufferPool) Get() []byte {
	if c, ok := bp.p.Get().(*copyBuffer); ok {
		b := c.b
		c.b = nil
		bufHolders.Put(c)
		return b
	}
	return make([]byte, bp.size)
}

// Put keeps the buffer; its holder comes from a second pool so that
// putting one back does not allocate.
func (bp *bufferPool) Put(b []byte) {
	c, _ := bufHolders.Get().(*copyBuffer)
	if c == nil {
		c = new(copyBuffer)
	}
	c.b = b
	bp.p.Put(c)
}

var bufHolders sync.Pool
