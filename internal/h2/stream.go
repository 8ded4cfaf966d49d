package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

// Errors a handler sees.
var (
	// errStreamReset: the stream was reset, by the client or for its
	// fault; nothing more is sent on it.
	errStreamReset = errors.New("h2: stream reset")
	// errConnClosed: the connection ended.
	errConnClosed = errors.New("h2: connection closed")
)

// stream is one request and its answer. The fields under "state" are
// under the connection's mu; the rest belong to the handler's goroutine.
type stream struct {
	c      *conn
	id     uint32
	ctx    context.Context
	cancel context.CancelFunc
	req    *http.Request
	w      responseWriter
	// needsContinue: the client waits for 100 Continue before it sends
	// the body, sent at the first read.
	needsContinue bool
	// tooLarge: the request's header list went past the limit, and the
	// request has none of its fields (buildRefused).
	tooLarge bool

	// state
	sendWindow    int64
	recvWindow    int64
	recvUnacked   int64
	declared      int64 // the request's content-length; -1: none
	received      int64
	body          []byte // received, not yet read
	bodyErr       error  // what a read returns once body is empty
	bodyClosed    bool   // the handler closed the body: data is dropped
	remoteDone    bool   // the client ended the stream (END_STREAM)
	localDone     bool   // the answer ended the stream
	counted       bool   // in the connection's open streams
	reset         error  // the stream was reset: nothing more is sent
	clientReset   bool   // by the client
	readDeadline  time.Time
	writeDeadline time.Time
}

func newStream(c *conn, id uint32) *stream {
	st := &stream{c: c, id: id, declared: -1}
	st.ctx, st.cancel = context.WithCancel(c.base)
	st.w.st = st
	return st
}

// resetLocked marks the stream reset with why, which its body reads
// return, and wakes its waiters. The caller sends RST_STREAM if it is
// the server's doing.
func (st *stream) resetLocked(why error) {
	if st.reset != nil {
		return
	}
	st.reset = why
	st.closedLocked()
	if st.bodyErr == nil || st.bodyErr == io.EOF && len(st.body) > 0 {
		st.bodyErr = why
	}
	st.cancel()
	st.c.cond.Broadcast()
}

// closedLocked takes the stream out of the connection's open streams
// once the protocol has it closed: reset, or ended both ways.
func (st *stream) closedLocked() {
	if st.counted && (st.reset != nil || st.remoteDone && st.localDone) {
		st.counted = false
		st.c.open--
	}
}

// grantLocked is how much of the stream's window to give back now: in
// quarters of it, never sooner. The window is the stream's alone, so a
// client that has spent it has sent what the handler holds or has read,
// and reading on comes to a quarter; a grant of each smaller read would
// cost a frame, a write, per read, and have the client send frames as
// small.
func (st *stream) grantLocked() uint32 {
	return grant(&st.recvUnacked, &st.recvWindow, st.c.s.streamWindow(), false)
}

// buildRequest makes the stream's request from its HEADERS, checked as
// RFC 9113 §8.3 asks: a malformed one is a stream error PROTOCOL_ERROR.
func (st *stream) buildRequest(f *headerBlock) error {
	bad := http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol}
	method, scheme := f.pseudo("method"), f.pseudo("scheme")
	authority, path := f.pseudo("authority"), f.pseudo("path")
	if f.pseudo("protocol") != "" {
		return bad // extended CONNECT is not offered
	}
	connect := method == http.MethodConnect
	if connect {
		if path != "" || scheme != "" || authority == "" {
			return bad
		}
	} else if method == "" || path == "" || scheme != "https" && scheme != "http" {
		return bad
	}
	c := st.c
	fields := f.regular()
	header := make(http.Header, len(fields))
	// One array backs every field's first value, not a slice each; a
	// field's slice is capped at its one value, so that a second value
	// (rare) moves it rather than overwriting its neighbour's.
	vals := make([]string, len(fields))
	for i, hf := range fields {
		k := c.canonical(hf.Name)
		switch k {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade":
			return bad
		case "Te":
			if hf.Value != "trailers" {
				return bad
			}
		}
		if vs, ok := header[k]; ok {
			header[k] = append(vs, hf.Value)
			continue
		}
		vals[i] = hf.Value
		header[k] = vals[i : i+1 : i+1]
	}
	if cookies := header["Cookie"]; len(cookies) > 1 {
		header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if expect := header["Expect"]; expect != nil {
		st.needsContinue = httpguts.HeaderValuesContainsToken(expect, "100-continue")
		if onlyContinue(expect) {
			// Met by the server, or empty; any other expectation is
			// left for the handler to see, and refuse if it cannot
			// meet it.
			delete(header, "Expect")
		}
	}
	var trailer http.Header
	for _, v := range header["Trailer"] {
		for key := range strings.SplitSeq(v, ",") {
			key = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(key))
			switch key {
			case "Transfer-Encoding", "Trailer", "Content-Length", "":
			default:
				if trailer == nil {
					trailer = http.Header{}
				}
				trailer[key] = nil
			}
		}
	}
	delete(header, "Trailer")
	if host := header["Host"]; len(host) == 1 {
		if authority == "" {
			authority = host[0]
		} else if host[0] != authority {
			return bad
		}
		delete(header, "Host")
	} else if len(host) > 1 {
		return bad
	}
	if strings.IndexByte(authority, '@') >= 0 && (scheme == "http" || scheme == "https") {
		return bad
	}
	if authority != "" && !httpguts.ValidHostHeader(authority) {
		return bad
	}
	var u *url.URL
	uri := path
	if connect {
		u, uri = &url.URL{Host: authority}, authority
	} else {
		if path[0] != '/' && path != "*" {
			return bad
		}
		var err error
		if u, err = url.ParseRequestURI(path); err != nil {
			return bad
		}
	}
	r := &http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     header,
		Host:       authority,
		RequestURI: uri,
		RemoteAddr: c.remote,
		Trailer:    trailer,
	}
	if f.streamEnded {
		r.Body = http.NoBody
	} else {
		r.ContentLength = -1
		if vv := header["Content-Length"]; len(vv) > 0 {
			if n, err := strconv.ParseUint(vv[0], 10, 63); err == nil {
				r.ContentLength = int64(n)
				st.declared = int64(n)
			} else {
				r.ContentLength = 0
			}
		}
		r.Body = &requestBody{st: st}
	}
	st.req = r.WithContext(st.ctx)
	return nil
}

// onlyContinue reports whether the Expect field's values ask for
// nothing but 100-continue: an empty list asks for nothing.
func onlyContinue(values []string) bool {
	for _, v := range values {
		for e := range strings.SplitSeq(v, ",") {
			if e = textproto.TrimString(e); e != "" && !strings.EqualFold(e, "100-continue") {
				return false
			}
		}
	}
	return true
}

// buildRefused makes the request of a header list past the limit, for
// the handler to refuse (Server.HandleRefused): the method, authority
// and path if they came before the limit, no fields and no body.
func (st *stream) buildRefused(f *headerBlock) {
	st.tooLarge = true
	r := &http.Request{
		Method:     f.pseudo("method"),
		URL:        &url.URL{},
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
		Header:     http.Header{},
		RemoteAddr: st.c.remote,
		Body:       http.NoBody,
	}
	if a := f.pseudo("authority"); httpguts.ValidHostHeader(a) && strings.IndexByte(a, '@') < 0 {
		r.Host = a
	}
	if p := f.pseudo("path"); strings.HasPrefix(p, "/") {
		if u, err := url.ParseRequestURI(p); err == nil {
			r.URL, r.RequestURI = u, p
		}
	}
	st.req = r.WithContext(st.ctx)
}

// run runs the handler, then ends the answer and the stream.
func (st *stream) run() {
	c := st.c
	defer c.handlers.Done()
	defer st.cancel()
	defer c.streamEnded(st)
	if !st.serve() {
		st.abort(http2.ErrCodeInternal)
		return
	}
	st.w.end()
}

// serve calls the handler; false when it panicked.
func (st *stream) serve() (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler && st.c.s.ErrorLog != nil {
				st.c.s.ErrorLog("h2: panic serving %s: %v", st.c.remote, v)
			}
			ok = false
		}
	}()
	st.c.h.ServeHTTP(&st.w, st.req)
	return true
}

// abort resets the stream, unless it is reset already.
func (st *stream) abort(code http2.ErrCode) {
	c := st.c
	c.mu.Lock()
	was := st.reset
	st.resetLocked(errStreamReset)
	c.mu.Unlock()
	if was == nil {
		c.writeReset(st.id, code)
	}
}

// sendContinue sends 100 Continue once, if the client waits for it.
func (st *stream) sendContinue() {
	if !st.needsContinue {
		return
	}
	st.needsContinue = false
	c := st.c
	if st.gone() {
		return
	}
	// The body may be read on another goroutine than the answer is
	// written on: whether the answer's head went is asked under wmu,
	// where it is sent.
	c.lockWrite()
	var err error
	if !st.w.sentHeader {
		err = c.writeHeaderBlock(st.id, http.StatusContinue, nil, false, "", false)
	}
	c.unlockWrite(err)
}

// requestBody is a stream's request body: what the reader goroutine
// received, read by the handler, the window given back as it reads.
type requestBody struct{ st *stream }

func (b *requestBody) Read(p []byte) (int, error) {
	st := b.st
	c := st.c
	st.sendContinue()
	c.mu.Lock()
	for len(st.body) == 0 && st.bodyErr == nil && !c.closed {
		if !c.waitLocked(st.readDeadline) {
			c.mu.Unlock()
			return 0, fmt.Errorf("h2: reading the request body: %w", os.ErrDeadlineExceeded)
		}
	}
	if len(st.body) == 0 {
		err := st.bodyErr
		if err == nil {
			err = fmt.Errorf("h2: reading the request body: %w: %w", errConnClosed, io.ErrUnexpectedEOF)
		}
		c.mu.Unlock()
		return 0, err
	}
	n := copy(p, st.body)
	st.body = st.body[n:]
	if len(st.body) == 0 {
		st.body = nil
	} else if cap(st.body) > 2*len(st.body)+16<<10 {
		// A few bytes left must not hold a whole window's array.
		st.body = append([]byte(nil), st.body...)
	}
	c.recvUnacked += int64(n)
	st.recvUnacked += int64(n)
	connInc := c.grantLocked()
	var streamInc uint32
	if !st.remoteDone && st.reset == nil {
		streamInc = st.grantLocked()
	}
	c.mu.Unlock()
	c.writeWindow(st.id, streamInc, 0, connInc)
	return n, nil
}

// Close drops what is left of the body: what the client still sends of
// it is read and let go.
func (b *requestBody) Close() error {
	st := b.st
	c := st.c
	c.mu.Lock()
	st.bodyClosed = true
	c.recvUnacked += int64(len(st.body))
	st.body = nil
	if st.bodyErr == nil {
		st.bodyErr = http.ErrBodyReadAfterClose
	}
	c.cond.Broadcast() // a Read on another goroutine ends
	connInc := c.grantLocked()
	c.mu.Unlock()
	c.writeWindow(0, connInc)
	return nil
}
