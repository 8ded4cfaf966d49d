package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"time"
)

// frontWriter writes one response on a front connection: the status line,
// the header map it is given, and the body framed by Content-Length when
// the header gives one, else chunked. It is the http.ResponseWriter of the
// gateway's own error pages as well as of forwarded responses.
type frontWriter struct {
	fc  *frontConn
	h   http.Header // the map written by WriteHeader
	own http.Header // reused map, for responses gatehouse writes itself

	requestID string
	head      bool // the request was HEAD: no body
	wrote     bool
	bodyOK    bool
	chunked   bool
	remaining int64 // of a Content-Length body; -1 when not declared
	// resp is the app's response being forwarded, whose trailers follow
	// the body: those it announced, and those it did not.
	resp *http.Response
	// failed: the client's connection broke, or the response was cut
	// short; the connection closes after it.
	failed bool

	dateSec int64
	date    []byte
}

// reset prepares the writer for the request fc has parsed.
func (w *frontWriter) reset(requestID string) {
	clear(w.own)
	*w = frontWriter{fc: w.fc, own: w.own, h: w.own, requestID: requestID, head: w.fc.req.Method == http.MethodHead,
		dateSec: w.dateSec, date: w.date}
}

func (w *frontWriter) Header() http.Header { return w.h }

// WriteHeader writes the head. Interim responses are not written: the
// front does not forward them (see exchange).
func (w *frontWriter) WriteHeader(code int) {
	if w.wrote || code < 200 {
		return
	}
	w.wrote = true
	w.bodyOK = code != http.StatusNoContent && code != http.StatusNotModified && !w.head
	w.remaining = -1
	if cl := w.h["Content-Length"]; len(cl) == 1 {
		if n, ok := parseLength(cl[0]); ok && w.bodyOK {
			w.remaining = n
		}
	}
	w.chunked = w.bodyOK && w.remaining < 0
	if w.resp != nil && len(w.resp.Trailer) > 0 && w.chunked {
		w.h["Trailer"] = trailerNames(w.resp.Trailer)
	}
	if w.fc.body.n > maxDrain {
		// The rest of the request body will not be read: the client must
		// know the connection ends with this answer.
		w.fc.closeAfter = true
	}
	bw := w.fc.bw
	bw.WriteString("HTTP/1.1 ")
	bw.Write(strconv.AppendInt(w.fc.scratch[:0], int64(code), 10))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
	if w.requestID != "" {
		bw.WriteString("X-Request-Id: ")
		bw.WriteString(w.requestID)
		bw.WriteString("\r\n")
	}
	for k, vs := range w.h {
		switch {
		case !validToken(k):
			continue // as net/http drops it: never a second, malformed Content-Length
		case k == "Transfer-Encoding" || k == "Connection":
			continue // the framing is this writer's
		case k == "Content-Length" && (code == http.StatusNoContent || w.chunked):
			continue
		}
		for _, v := range vs {
			if k == "X-Request-Id" && v == w.requestID {
				continue
			}
			writeField(bw, k, v)
		}
	}
	if _, ok := w.h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.Write(w.httpDate())
		bw.WriteString("\r\n")
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if w.fc.closeAfter || w.fc.f.closing.Load() {
		w.fc.closeAfter = true
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

// errBodyTooLong is a body longer than its Content-Length said.
var errBodyTooLong = errors.New("response body longer than its Content-Length")

func (w *frontWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyOK || len(p) == 0 {
		return len(p), nil
	}
	if w.failed {
		return 0, errClientWrite
	}
	var tooLong error
	if w.remaining >= 0 {
		if int64(len(p)) > w.remaining {
			p, tooLong = p[:w.remaining], errBodyTooLong
		}
		w.remaining -= int64(len(p))
	}
	bw := w.fc.bw
	if w.chunked {
		bw.Write(strconv.AppendUint(w.fc.scratch[:0], uint64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	n, err := bw.Write(p)
	if w.chunked {
		bw.WriteString("\r\n")
	}
	if err != nil {
		w.fail()
		return n, errClientWrite
	}
	return n, tooLong
}

// errClientWrite: the client's connection broke while its response was
// written.
var errClientWrite = errors.New("writing the response to the client")

// Flush sends what is buffered, for streamed responses.
func (w *frontWriter) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.fc.bw.Flush() != nil {
		w.fail()
	}
}

func (w *frontWriter) fail() {
	w.failed = true
	w.fc.closeAfter = true
	w.fc.ctx.cancel()
}

// abort ends a response cut short: the client must see the connection
// close, not a complete response.
func (w *frontWriter) abort() {
	w.failed = true
	w.fc.closeAfter = true
	w.fc.bw.Flush()
}

// end completes the response: the last chunk and the trailers, then one
// flush. A request nothing was written for (its client is gone) gets no
// answer: the connection closes.
func (w *frontWriter) end() {
	if !w.wrote || w.failed {
		w.fc.closeAfter = true
		return
	}
	bw := w.fc.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		var trailer http.Header
		if w.resp != nil {
			trailer = w.resp.Trailer
		}
		for k, vs := range trailer {
			if !validToken(k) {
				continue
			}
			for _, v := range vs {
				writeField(bw, k, v)
			}
		}
		bw.WriteString("\r\n")
	}
	if w.remaining > 0 {
		w.fc.closeAfter = true // shorter than declared
	}
	if bw.Flush() != nil {
		w.fail()
	}
}

func trailerNames(t http.Header) []string {
	s := ""
	for k := range t {
		if s != "" {
			s += ", "
		}
		s += k
	}
	return []string{s}
}

// httpDate is the Date header's value, formatted once a second.
func (w *frontWriter) httpDate() []byte {
	now := time.Now()
	if sec := now.Unix(); sec != w.dateSec || w.date == nil {
		w.dateSec = sec
		w.date = now.UTC().AppendFormat(w.date[:0], http.TimeFormat)
	}
	return w.date
}
