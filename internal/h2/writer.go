package h2

import (
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// AnswerBuffer is how much of an answer's body a stream holds before it
// is sent: an answer this small leaves, HEADERS and DATA, in one write,
// and a write that still fits only copies, whatever the client does.
const AnswerBuffer = 8 << 10

// maxHold bounds the DATA one hold of the write lock sends.
const maxHold = 32 << 10

var chunks = sync.Pool{New: func() any { b := make([]byte, 0, AnswerBuffer); return &b }}

// errWriteTimeout: the write deadline passed while the client's window
// was closed.
var errWriteTimeout = fmt.Errorf("h2: the client's window stayed closed: %w", os.ErrDeadlineExceeded)

// responseWriter is a stream's http.ResponseWriter. It also has what
// http.ResponseController looks for: Flush(Error) and the deadlines.
type responseWriter struct {
	st          *stream
	header      http.Header
	status      int
	wroteHeader bool // the handler gave its final status
	sentHeader  bool // its HEADERS are on the wire
	noBody      bool // the status or the method has no body
	head        bool
	declared    int64 // the content-length the handler set; -1: none
	written     int64
	buf         *[]byte
	trailerKeys []string // announced in Trailer when the head was written
	// fields and hasDate are the head as WriteHeader saw it; fields'
	// storage is pooled's (fieldLists), given back by release.
	fields  []hpack.HeaderField
	pooled  *[]hpack.HeaderField
	hasDate bool
	// adopted: header is a map UseHeader gave, its owner's, until
	// WriteHeader has read it.
	adopted bool
}

func (w *responseWriter) Header() http.Header {
	if w.header == nil {
		w.header = heads.Get().(http.Header)
	}
	return w.header
}

// UseHeader makes h the answer's header map, in place of the writer's
// own, until the head is written: a proxy hands over the map it parsed
// its upstream's answer into rather than copying it field by field.
// WriteHeader reads h and lets it go (the proxy may reuse it once the
// handler returns); fields set after it go into the writer's own map.
func (w *responseWriter) UseHeader(h http.Header) {
	if w.wroteHeader {
		return
	}
	if !w.adopted {
		w.putHeader()
	}
	w.header, w.adopted = h, true
}

// putHeader gives the writer's own header map back to heads, unless it
// grew past maxPooledFields.
func (w *responseWriter) putHeader() {
	h := w.header
	w.header = nil
	if h != nil && len(h) <= maxPooledFields {
		clear(h)
		heads.Put(h)
	}
}

// heads are answers' header maps, kept from one stream to the next: a
// map grown to an answer's fields is cleared for the next answer (when
// its stream has ended, release) instead of made and grown anew. One
// grown past maxPooledFields is left to the collector.
var heads = sync.Pool{New: func() any { return make(http.Header, 16) }}

// fieldLists are the lists of an answer's head fields as it is sent,
// kept as heads are.
var fieldLists = sync.Pool{New: func() any { f := make([]hpack.HeaderField, 0, 16); return &f }}

const maxPooledFields = 64

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if code < 200 {
		if code != http.StatusSwitchingProtocols {
			w.writeInterim(code)
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	w.head = w.st.req.Method == http.MethodHead
	w.noBody = code == http.StatusNoContent || code == http.StatusNotModified
	w.declared = -1
	if cl := w.header["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.declared = n
		}
	}
	// The head as it is now is what is sent, whenever it is sent.
	if w.pooled == nil {
		w.pooled = fieldLists.Get().(*[]hpack.HeaderField)
	}
	var prefixed bool
	w.fields, prefixed = appendFields((*w.pooled)[:0], w.header)
	_, w.hasDate = w.header["Date"]
	for _, v := range w.header["Trailer"] {
		for k := range strings.SplitSeq(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				w.trailerKeys = append(w.trailerKeys, http.CanonicalHeaderKey(k))
			}
		}
	}
	if w.adopted {
		// The end reads the map for trailers, after the handler (and
		// the adopted map's owner) let go of it: the writer's own map
		// takes over, with the adopted one's fields when trailers may
		// be among them.
		own := heads.Get().(http.Header)
		if prefixed || len(w.trailerKeys) > 0 {
			maps.Copy(own, w.header)
		}
		w.header, w.adopted = own, false
	}
}

// writeInterim sends a 1xx answer with the header as it is now.
func (w *responseWriter) writeInterim(code int) {
	st := w.st
	c := st.c
	if st.gone() {
		return
	}
	fields, _ := appendFields(nil, w.header)
	c.lockWrite()
	err := c.writeHeaderBlock(st.id, code, fields, false, "", false)
	c.unlockWrite(err)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	switch {
	case w.noBody:
		return 0, http.ErrBodyNotAllowed
	case w.st.gone():
		return 0, errStreamReset
	case w.head:
		return len(p), nil
	case w.declared >= 0 && w.written+int64(len(p)) > w.declared:
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.buf == nil {
		w.buf = chunks.Get().(*[]byte)
	}
	b := *w.buf
	if len(b)+len(p) <= AnswerBuffer {
		*w.buf = append(b, p...)
		return len(p), nil
	}
	if len(b) > 0 {
		if err := w.send(b, false); err != nil {
			return 0, err
		}
		*w.buf = b[:0]
	}
	if len(p) >= AnswerBuffer {
		if err := w.send(p, false); err != nil {
			return 0, err
		}
	} else {
		*w.buf = append((*w.buf)[:0], p...)
	}
	return len(p), nil
}

func (w *responseWriter) Flush() { _ = w.FlushError() }

// Refused is the status a request handed over by Server.HandleRefused
// is to be answered with, 0 for any other: 431 when its header list went
// past MaxHeaderListSize.
func (w *responseWriter) Refused() int {
	if w.st.tooLarge {
		return http.StatusRequestHeaderFieldsTooLarge
	}
	return 0
}

// FlushError sends the head and what the body holds.
func (w *responseWriter) FlushError() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	var b []byte
	if w.buf != nil {
		b = *w.buf
	}
	if err := w.send(b, false); err != nil {
		return err
	}
	if w.buf != nil {
		*w.buf = b[:0]
	}
	return nil
}

// SetWriteDeadline bounds the wait for the client's window to send on.
func (w *responseWriter) SetWriteDeadline(t time.Time) error {
	w.st.setDeadline(&w.st.writeDeadline, t)
	return nil
}

// SetReadDeadline bounds the wait for the request body's next bytes.
func (w *responseWriter) SetReadDeadline(t time.Time) error {
	w.st.setDeadline(&w.st.readDeadline, t)
	return nil
}

// setDeadline sets one of the stream's deadlines; a wait already under
// way takes the new one.
func (st *stream) setDeadline(d *time.Time, t time.Time) {
	c := st.c
	c.mu.Lock()
	*d = t
	c.cond.Broadcast()
	c.mu.Unlock()
}

// end finishes the answer after the handler returned: what the body
// holds, with its length when nothing was sent yet, then trailers. A
// body shorter than its declared length resets the stream, as does a
// client still sending a body nobody reads (NO_ERROR: it was answered).
func (w *responseWriter) end() {
	defer w.release()
	st := w.st
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if st.gone() {
		return
	}
	if w.declared >= 0 && w.written < w.declared && !w.head && !w.noBody {
		st.abort(http2.ErrCodeInternal)
		return
	}
	var b []byte
	if w.buf != nil {
		b = *w.buf
	}
	if err := w.sendEnd(b); err != nil {
		return
	}
	c := st.c
	c.mu.Lock()
	stillSending := !st.remoteDone && st.reset == nil
	c.mu.Unlock()
	if stillSending {
		st.abort(http2.ErrCodeNo)
	}
}

func (w *responseWriter) release() {
	if w.buf != nil {
		*w.buf = (*w.buf)[:0]
		chunks.Put(w.buf)
		w.buf = nil
	}
	if w.adopted {
		w.header, w.adopted = nil, false // its owner's: neither cleared nor pooled
	} else {
		w.putHeader()
	}
	if p := w.pooled; p != nil {
		f := w.fields
		w.pooled, w.fields = nil, nil
		if cap(f) <= maxPooledFields {
			clear(f[:cap(f)]) // the values are the answer's: not kept alive
			*p = f[:0]
			fieldLists.Put(p)
		}
	}
}

// trailers are the trailer fields the handler set: those it announced,
// and those under http.TrailerPrefix.
func (w *responseWriter) trailers() http.Header {
	var t http.Header
	for k, vs := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && len(vs) > 0 {
			if t == nil {
				t = http.Header{}
			}
			t[http.CanonicalHeaderKey(name)] = vs
		}
	}
	for _, k := range w.trailerKeys {
		if _, set := t[k]; set {
			continue // the prefixed value stands, as in net/http's server
		}
		if vs := w.header[k]; len(vs) > 0 {
			if t == nil {
				t = http.Header{}
			}
			t[k] = vs
		}
	}
	return t
}

// sendEnd sends the last of the answer: b, then trailers if any, the
// last frame ending the stream.
func (w *responseWriter) sendEnd(b []byte) error {
	t := w.trailers()
	if t == nil {
		return w.sendFrames(b, true, nil)
	}
	return w.sendFrames(b, false, t)
}

// send sends the head if it is not sent yet, and b.
func (w *responseWriter) send(b []byte, end bool) error { return w.sendFrames(b, end, nil) }

// sendFrames writes the head (once) and b as DATA within the windows,
// the last frame with END_STREAM if end, then trailers t (which end the
// stream) if set. The head goes out even while the window is closed.
func (w *responseWriter) sendFrames(b []byte, end bool, t http.Header) error {
	st := w.st
	c := st.c
	cl := ""
	if !w.sentHeader && (end || t != nil) && w.declared < 0 && !w.noBody && !w.head {
		cl = strconv.Itoa(len(b))
	}
	for first := true; first || len(b) > 0; first = false {
		n := 0
		if len(b) > 0 {
			var err error
			// At most maxHold a hold of the write lock: other streams'
			// frames and the reader's acknowledgements go between.
			if n, err = st.takeWindow(min(len(b), maxHold), !w.sentHeader); err != nil {
				if errors.Is(err, errWriteTimeout) {
					st.abort(http2.ErrCodeInternal)
				}
				return err
			}
		}
		chunk := b[:n]
		b = b[n:]
		last := len(b) == 0
		fin := end && last
		if fin || last && t != nil {
			// Closed on the server's side before the frame that says so
			// leaves: the client's next frame on it finds it so.
			c.mu.Lock()
			st.localDone = true
			st.closedLocked()
			c.mu.Unlock()
		}
		c.lockWrite()
		var err error
		switch {
		case !w.sentHeader:
			w.sentHeader = true
			err = c.writeHeaderBlock(st.id, w.status, w.fields, !w.hasDate, cl, fin && n == 0)
		case n == 0 && fin:
			err = c.fr.WriteData(st.id, true, nil)
		}
		if err == nil && n > 0 {
			err = c.writeData(st.id, chunk, fin)
		}
		if err == nil && last && t != nil {
			fields, _ := appendFields(nil, t)
			err = c.writeHeaderBlock(st.id, 0, fields, false, "", true)
		}
		if err = c.unlockWrite(err); err != nil {
			return err
		}
	}
	return nil
}

// takeWindow takes up to want bytes of the stream's and the
// connection's windows, waiting for some unless nowait.
func (st *stream) takeWindow(want int, nowait bool) (int, error) {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		switch {
		case st.reset != nil:
			return 0, errStreamReset
		case c.closed:
			return 0, errConnClosed
		}
		if avail := min(st.sendWindow, c.sendWindow); avail > 0 {
			n := int(min(int64(want), avail))
			st.sendWindow -= int64(n)
			c.sendWindow -= int64(n)
			return n, nil
		}
		if nowait {
			return 0, nil
		}
		if !c.waitLocked(st.writeDeadline) {
			return 0, errWriteTimeout
		}
	}
}

// gone reports whether nothing more can be sent on the stream.
func (st *stream) gone() bool {
	c := st.c
	c.mu.Lock()
	defer c.mu.Unlock()
	return st.reset != nil || c.closed
}

// writeData writes b as DATA frames no larger than the client reads.
// Under wmu.
func (c *conn) writeData(id uint32, b []byte, end bool) error {
	max := int(c.peerMaxFrame.Load())
	for {
		n := min(len(b), max)
		if err := c.fr.WriteData(id, end && n == len(b), b[:n]); err != nil {
			return err
		}
		b = b[n:]
		if len(b) == 0 {
			return nil
		}
	}
}

// writeHeaderBlock encodes and writes a header block: status (none for
// trailers), fields, Date if date, and content-length if cl is set. Under
// wmu: the first block encoded is the first sent, which carries the
// table size update.
func (c *conn) writeHeaderBlock(id uint32, status int, fields []hpack.HeaderField, date bool, cl string, end bool) error {
	enc := &c.henc
	enc.reset()
	if status != 0 {
		enc.status(status)
	}
	for _, f := range fields {
		if f.Name == "date" && !f.Sensitive {
			if b := c.s.dateField(f.Value); b != nil {
				enc.raw(b)
				continue
			}
		}
		enc.field(f)
	}
	if date {
		enc.raw(c.s.date().field)
	}
	if cl != "" {
		enc.field(hpack.HeaderField{Name: "content-length", Value: cl})
	}
	block := enc.block()
	max := int(c.peerMaxFrame.Load())
	n := min(len(block), max)
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block[:n], EndStream: end, EndHeaders: n == len(block)})
	for block = block[n:]; err == nil && len(block) > 0; block = block[n:] {
		n = min(len(block), max)
		err = c.fr.WriteContinuation(id, n == len(block), block[:n])
	}
	enc.done()
	return err
}
