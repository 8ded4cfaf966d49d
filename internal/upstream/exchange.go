package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/http1"
	"github.com/gatehouse/gatehouse/internal/peek"
)

// Client is the side of an attempt that the exchange reports to while it
// waits: whether the request's client is still there, and the interim
// (1xx) answers it should see.
type Client interface {
	// Gone reports whether the client went away; asked between the
	// slices of the wait for the app's first byte.
	Gone() bool
	// Interim passes on a 1xx answer other than 101 (103 Early Hints).
	Interim(code int, h http.Header)
}

// Attempt is one exchange with a member: what the caller sets, and what
// the exchange records of its progress for the classifier. The caller
// reuses it from one request to the next (Reset).
type Attempt struct {
	// Timeout (request_timeout) bounds the wait for the response head
	// once the request is written, each write of the request to the app,
	// and each wait for more of a body of known length.
	Timeout time.Duration
	// Deadline is when the wait for the response head ends: set to
	// Timeout after the request was written, or later if the caller set
	// a later one.
	Deadline time.Time
	// RequestURI, when set, is the request target sent as it is.
	RequestURI string
	// HeadLimit is the largest response head read; 0 means
	// DefaultHeadLimit.
	HeadLimit int64
	// Client is told of interim answers and asked whether it left.
	Client Client

	Progress cause.Progress
	// IdleTime is how long a reused connection had been idle.
	IdleTime time.Duration
	// WroteAt is when the request was written.
	WroteAt time.Time
	// Start is when the caller began the attempt, as it read the clock:
	// a reused connection's idle time is reckoned from it rather than
	// from another reading (zero: RoundTrip reads the clock).
	Start time.Time

	head http1.ResponseHead
	resp http.Response
	body lengthBody
}

// DefaultHeadLimit is the response head limit when none is set.
const DefaultHeadLimit = 64 << 10

// maxInterim bounds the 1xx answers read before a final one, as net/http's
// client does: an app that sends them without end gets bad_response.
const maxInterim = 10

// ErrBadStatus: the app's status code is not one HTTP defines (100–599).
var ErrBadStatus = errors.New("status code outside 100-599")

// ErrTooManyInterim: more than maxInterim 1xx answers.
var ErrTooManyInterim = errors.New("too many interim (1xx) responses")

// Reset prepares a for a new request, keeping its reused storage.
func (a *Attempt) Reset() {
	head := a.head
	*a = Attempt{head: head}
}

// resetProgress starts one try with no progress.
func (a *Attempt) resetProgress() {
	a.Progress = cause.Progress{}
	a.IdleTime = 0
	a.WroteAt = time.Time{}
}

// RoundTrip sends req over one of p's connections and reads the response
// head, recording in a how far it got. The response's body, when there is
// one, owns the connection: the caller calls Finish on the returned Conn
// when the body was read to its end (clean) or abandoned.
func (p *Pool) RoundTrip(ctx context.Context, req *http.Request, a *Attempt) (*http.Response, *Conn, error) {
	a.resetProgress()
	now := a.Start
	if now.IsZero() {
		now = time.Now()
	}
	pc, reused, idleFor, err := p.get(ctx, now)
	if err != nil {
		return nil, nil, err
	}
	a.Progress.GotConn, a.Progress.Reused, a.IdleTime = true, reused, idleFor
	a.Progress.TLS13 = pc.tls13
	pc.begin(a.Timeout)
	resp, err := a.exchange(pc, req)
	pc.dst.timeout = 0
	if err != nil {
		pc.Close()
		return nil, nil, err
	}
	pc.conn.SetDeadline(time.Time{})
	if resp.ContentLength >= 0 && resp.StatusCode != http.StatusSwitchingProtocols {
		pc.src.idle = a.Timeout
	}
	pc.reuse = !resp.Close
	pc.bodyless = http1.BodyForbidden(req.Method, resp.StatusCode)
	return resp, pc, nil
}

// exchange writes the request and reads the response head, passing on
// interim answers.
func (a *Attempt) exchange(pc *Conn, req *http.Request) (*http.Response, error) {
	// Sent, or failed: a request not sent whole ends its connection
	// (earlyResponse's answer asks to close).
	if a.Progress.Reused && req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0 {
		pc.noteAcked()
	}
	err := a.sendRequest(pc, req)
	if err != nil {
		if IsClientBodyError(err) {
			return nil, err
		}
		// The app may have answered before it read the whole request (a
		// 413 or 401 to an upload), and then closed, or stopped reading
		// (the write timed out): its answer stands.
		if resp := a.earlyResponse(pc, req); resp != nil {
			a.Progress.WroteRequest, a.Progress.GotFirstByte = true, true
			return resp, nil
		}
		// Some of it reached the app, which may have read it: the
		// classifier must not take the failure for an idle close, unless
		// the app's TCP took none of it (the bytes the socket took met a
		// closed connection).
		a.Progress.WroteSome = pc.dst.sent > 0 && !pc.nothingAcked()
		return nil, err
	}
	a.Progress.WroteRequest = true
	for range maxInterim + 1 {
		if err := a.awaitFirstByte(pc); err != nil {
			return nil, err
		}
		a.Progress.GotFirstByte = true
		resp, err := a.readResponse(pc, req)
		switch {
		case err != nil:
			return nil, fmt.Errorf("read response: %w", err)
		case resp.StatusCode < 100 || resp.StatusCode > 599:
			return nil, fmt.Errorf("read response: %w: %d", ErrBadStatus, resp.StatusCode)
		case resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols:
			return resp, nil
		}
		if a.Client != nil {
			a.Client.Interim(resp.StatusCode, resp.Header)
		}
	}
	return nil, fmt.Errorf("read response: %w", ErrTooManyInterim)
}

// sendRequest writes and sends req: a request without a body from its
// head's block alone, given back once it is sent; one with a body through
// a writer, given back once all of it is.
func (a *Attempt) sendRequest(pc *Conn, req *http.Request) error {
	head, body, chunked := appendHead(pc.takeHead(), req, a.RequestURI)
	if !body {
		err := a.send(pc, head)
		pc.putHead(head) // (when the send has not)
		return err
	}
	pc.takeWriter()
	pc.bw.Write(head)
	pc.putHead(head)
	err := writeBody(pc.bw, req.Body, chunked)
	if err == nil {
		err = a.send(pc, nil)
	}
	pc.putWriter()
	return err
}

// send writes head, or else what is left of the request in the writer,
// and sets WroteAt and the head's deadline. On a plain socket, when this
// one write carries the whole request, it waits for the answer's first
// bytes too, up to the first of awaitFirstByte's slices (see
// peek.SendWait), and a head's block is given back before the wait: the
// read that follows does not find the socket empty first. An answer to a
// request sent in one write cannot come before it, and the look before a
// reuse found the socket empty.
func (a *Attempt) send(pc *Conn, head []byte) error {
	now := time.Now()
	a.setWrote(now)
	pc.dst.waited = false
	if pc.dst.peek != nil && pc.dst.writes == 0 && (len(head) > 0 || head == nil && pc.bw.Buffered() > 0) {
		pc.conn.SetReadDeadline(a.slice(now))
		pc.dst.wait = true
	}
	var err error
	if head != nil {
		pc.dst.then = pc.putHeadFn
		_, err = pc.dst.Write(head)
		pc.dst.then = nil
	} else {
		err = pc.bw.Flush()
	}
	if pc.dst.wait || !pc.dst.waited {
		// No wait: the request's last bytes went the usual way, which
		// may have taken a while.
		pc.dst.wait = false
		a.setWrote(time.Now())
	}
	return err
}

// setWrote records when the request was written; the head's deadline is
// Timeout after it, or later if the caller set a later one.
func (a *Attempt) setWrote(t time.Time) {
	a.WroteAt = t
	if d := t.Add(a.Timeout); a.Timeout > 0 && d.After(a.Deadline) {
		a.Deadline = d // the request took long to send (a slow upload)
	}
}

// slice is the end of the wait for the first byte's slice that starts at
// now.
func (a *Attempt) slice(now time.Time) time.Time {
	if s := now.Add(clientCheck); s.Before(a.Deadline) {
		return s
	}
	return a.Deadline
}

// readResponse reads the app's response head within the head limit: a
// plain answer into a's reused response and header map, anything else
// with http.ReadResponse, whose framing rules stay the reference. Nothing
// is consumed before the choice is made.
func (a *Attempt) readResponse(pc *Conn, req *http.Request) (*http.Response, error) {
	limit := a.HeadLimit
	if limit <= 0 {
		limit = DefaultHeadLimit
	}
	buf, _ := pc.br.Peek(pc.br.Buffered())
	n := http1.HeadEnd(buf) // once: for the limit and the plain parse
	size := n
	if n < 0 {
		size = bareLFHeadLen(buf)
	}
	if int64(size) > limit || size == 0 && int64(len(buf)) >= limit {
		// (Already read: the buffer may hold more than a small limit. A
		// limit's worth without the head's end is a head over it.)
		return nil, ErrHeadTooLarge
	}
	pc.src.left = max(limit-int64(len(buf)), 1)
	defer func() { pc.src.left = -1 }()
	if req.Method != http.MethodHead && n > 0 && a.head.ParsePlainHead(buf[:n]) {
		pc.br.Discard(n)
		return a.plain(pc.br, req), nil
	}
	return http.ReadResponse(pc.br, req)
}

// bareLFHeadLen is the length of a head at the start of buf whose lines
// end in a bare LF (http.ReadResponse accepts them); 0 when its end is not
// in buf.
func bareLFHeadLen(buf []byte) int {
	end := -1
	for _, sep := range []string{"\n\n", "\n\r\n"} {
		if i := bytes.Index(buf, []byte(sep)); i >= 0 && (end < 0 || i+len(sep) < end) {
			end = i + len(sep)
		}
	}
	return max(end, 0)
}

func (a *Attempt) plain(br *bufio.Reader, req *http.Request) *http.Response {
	h := &a.head
	a.resp = http.Response{
		Status: h.Status, StatusCode: h.StatusCode, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h.Header, ContentLength: h.ContentLength, Close: h.Close, Request: req, Body: http.NoBody,
	}
	if h.ContentLength > 0 {
		a.body = lengthBody{br: br, n: h.ContentLength}
		a.resp.Body = &a.body
	}
	return &a.resp
}

// earlyWait bounds the look for a response after writing the request
// failed. An answer the app sent before closing arrived before the close
// did, so it is already there or never comes.
const earlyWait = 20 * time.Millisecond

// earlyResponse reads a final response the app sent before the request was
// all written, if there is one. The connection is not reused after it.
func (a *Attempt) earlyResponse(pc *Conn, req *http.Request) *http.Response {
	pc.takeReader()
	pc.conn.SetReadDeadline(time.Now().Add(earlyWait))
	for range maxInterim + 1 {
		resp, err := a.readResponse(pc, req)
		switch {
		case err != nil:
			return nil
		case resp.StatusCode >= 200:
			resp.Close = true
			return resp
		}
	}
	return nil
}

// clientCheck is how often a request waiting for the app's first byte
// checks whether its client went away. Waiting in slices, rather than
// arming a context callback per request, keeps fast requests free of it.
const clientCheck = 250 * time.Millisecond

// awaitFirstByte waits for the response to start, until the deadline or
// the client's going away; the head that follows is read under the
// deadline. The connection takes its reader once the answer has begun
// (the send's wait, see send, holds none), and on a plain socket an app
// slower than the first slice (a long poll, a slow report) is waited for
// without one: a look at the socket, then the read.
func (a *Attempt) awaitFirstByte(pc *Conn) error {
	now := a.WroteAt
	// waited: send waited, under the first slice's deadline; only the
	// first byte of the first answer (not one after a 1xx).
	waited := pc.dst.waited
	pc.dst.waited = false
	for first := true; ; first = false {
		if !first || !waited {
			pc.conn.SetReadDeadline(a.slice(now)) // (send set the first)
		}
		var err error
		if !first && pc.dst.peek != nil {
			// (The last slice's look found no byte: the reader holds
			// nothing.)
			pc.putReader()
			err = pc.peek.Wait()
		}
		if err == nil {
			pc.takeReader()
			_, err = pc.br.Peek(1)
		}
		if err != nil && first && waited && IsDeadline(err) {
			// The wait may have missed what came (bytes there before it
			// began, see peek.SendWait): a look, under no deadline,
			// and if something is there it is read rather than a
			// timeout reported.
			pc.conn.SetReadDeadline(time.Time{})
			if pc.peek.Look() != peek.Quiet {
				pc.conn.SetReadDeadline(time.Now().Add(clientCheck))
				_, err = pc.br.Peek(1)
			}
		}
		if err == nil {
			if buf, _ := pc.br.Peek(pc.br.Buffered()); http1.HeadEnd(buf) <= 0 {
				// The rest of the head is still to read (a whole one
				// is read from the buffer, under no deadline).
				pc.conn.SetReadDeadline(a.Deadline)
			}
			return nil
		}
		now = time.Now()
		switch {
		case !IsDeadline(err):
			return err
		case a.Client != nil && a.Client.Gone():
			return context.Canceled
		case !now.Before(a.Deadline):
			return err
		}
	}
}

// skipHeaders are written from the request's fields, not its header map.
// Connection is not among them: the caller has removed the client's
// hop-by-hop headers and sets only "Connection: Upgrade", which an upgrade
// needs.
var skipHeaders = map[string]bool{"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true}

// appendHead appends an HTTP/1.1 request's head to dst: the request line,
// Host, the headers the caller prepared, the body's framing. It reports
// whether a body follows, and whether chunked.
func appendHead(dst []byte, req *http.Request, uri string) (head []byte, body, chunked bool) {
	if uri == "" {
		uri = req.URL.RequestURI()
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	dst = append(dst, req.Method...)
	dst = append(dst, ' ')
	dst = append(dst, uri...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, http1.Clean(host)...)
	dst = append(dst, "\r\n"...)
	for k, vs := range req.Header {
		if skipHeaders[k] {
			continue
		}
		for _, v := range vs {
			dst = http1.AppendField(dst, k, v)
		}
	}
	body = req.Body != nil && req.Body != http.NoBody
	chunked = body && req.ContentLength <= 0
	switch {
	case chunked:
		dst = append(dst, "Transfer-Encoding: chunked\r\n\r\n"...)
	case body || req.ContentLength > 0 || expectsBody(req.Method):
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, req.ContentLength, 10)
		dst = append(dst, "\r\n\r\n"...)
	default:
		dst = append(dst, "\r\n"...)
	}
	return dst, body, chunked
}

// expectsBody reports whether a request of method without a body still
// says Content-Length: 0, as http.Transport does: some servers answer 411
// to a POST without it.
func expectsBody(method string) bool {
	return method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch
}

func writeBody(bw *bufio.Writer, body io.Reader, chunked bool) error {
	if !chunked {
		_, err := io.Copy(bw, body)
		return err
	}
	cw := httputil.NewChunkedWriter(bw)
	if _, err := io.Copy(cw, body); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// IsDeadline reports whether err is a connection deadline passing.
func IsDeadline(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// ClientBodyError is a failure to read the client's request body while it
// streamed to the app: the failure is the client's, not the instance's.
type ClientBodyError struct{ Err error }

func (e *ClientBodyError) Error() string { return "reading the request body: " + e.Err.Error() }
func (e *ClientBodyError) Unwrap() error { return e.Err }

// IsClientBodyError reports whether err, or an error it wraps, is a
// ClientBodyError, without the allocation of errors.As.
func IsClientBodyError(err error) bool {
	for err != nil {
		if _, ok := err.(*ClientBodyError); ok {
			return true
		}
		err = errors.Unwrap(err)
	}
	return false
}

// lengthBody reads a body of n bytes, returning io.EOF with its last bytes
// so that the connection goes back to the pool as soon as they are read.
type lengthBody struct {
	br *bufio.Reader
	n  int64
}

func (b *lengthBody) Read(p []byte) (int, error) {
	if b.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.n {
		p = p[:b.n]
	}
	n, err := b.br.Read(p)
	b.n -= int64(n)
	switch {
	case b.n == 0:
		return n, io.EOF
	case err == io.EOF:
		return n, io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *lengthBody) Close() error { return nil }
