package front

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gatehouse/gatehouse/internal/http1"
)

// Writer writes one response on a front connection: the status line, the
// header map it is given, and the body framed by Content-Length when the
// header gives one, else chunked. It is the http.ResponseWriter of the
// gateway's own error pages as well as of forwarded responses.
type Writer struct {
	fc  *conn
	h   http.Header // the map written by WriteHeader
	own http.Header // reused map, for responses the handler builds itself

	requestID string
	wrote     bool
	bodyOK    bool
	chunked   bool
	remaining int64 // of a Content-Length body; -1 when not declared
	trailer   *http.Header
	// failed: the client's connection broke, or the response was cut
	// short; the connection closes after it.
	failed bool
	// switched: the answer was 101, and the connection is the new
	// protocol's (conn.takeOver).
	switched bool

	dateSec int64
	date    []byte
}

// reset prepares the writer for the next request. The write buffer is
// taken when the answer's head is written (statusLine), not before: a
// request waiting for its app holds none.
func (w *Writer) reset() {
	clear(w.own)
	*w = Writer{fc: w.fc, own: w.own, h: w.own, dateSec: w.dateSec, date: w.date}
}

// SetRequestID makes every answer carry X-Request-Id: id (once, whatever
// the app's header says).
func (w *Writer) SetRequestID(id string) { w.requestID = id }

// UseHeader makes h the header map WriteHeader writes: a forwarded
// response's own, not copied.
func (w *Writer) UseHeader(h http.Header) { w.h = h }

// SetTrailer names where the trailer fields written after a chunked body
// are: read when the response ends, since a body reader fills them (and
// may replace the map) only at its end.
func (w *Writer) SetTrailer(t *http.Header) { w.trailer = t }

func (w *Writer) Header() http.Header { return w.h }

// WriteHeader writes the head; a 101 goes out at once (see switchHead).
// Other interim answers go through WriteInterim.
func (w *Writer) WriteHeader(code int) {
	if code == http.StatusSwitchingProtocols && !w.wrote {
		w.switchHead()
		return
	}
	if w.wrote || code < 200 {
		return
	}
	w.wrote = true
	fc := w.fc
	w.bodyOK = code != http.StatusNoContent && code != http.StatusNotModified && fc.x.Req.Method != http.MethodHead
	w.remaining = -1
	if cl := w.h["Content-Length"]; len(cl) == 1 {
		if n, ok := http1.ParseLength(cl[0]); ok && w.bodyOK {
			w.remaining = n
		}
	}
	w.chunked = w.bodyOK && w.remaining < 0
	if w.chunked && fc.x.Req.ProtoMinor == 0 {
		// HTTP/1.0 has no chunks: the body ends with the connection.
		w.chunked, fc.closeAfter = false, true
	}
	if fc.body.expect {
		// The client waits for 100 Continue, which will not come now:
		// what it sends next is not a request.
		fc.closeAfter = true
	}
	if w.trailer != nil && len(*w.trailer) > 0 && w.chunked {
		w.h["Trailer"] = trailerNames(*w.trailer)
	}
	if fc.body.n > maxDrain {
		// The rest of the request body will not be read: the client must
		// know the connection ends with this answer.
		fc.closeAfter = true
	}
	w.statusLine(code)
	bw := &fc.bw
	if w.requestID != "" {
		bw.WriteString("X-Request-Id: ")
		bw.WriteString(http1.Clean(w.requestID))
		bw.WriteString("\r\n")
	}
	for k, vs := range w.h {
		switch {
		case !http1.ValidToken(k):
			continue // as net/http drops it: never a second, malformed Content-Length
		case k == "Transfer-Encoding" || k == "Connection":
			continue // the framing is this writer's
		case k == "Content-Length" && (code == http.StatusNoContent || w.chunked):
			continue
		case k == "X-Request-Id" && w.requestID != "":
			continue // written above, in place of the app's
		}
		for _, v := range vs {
			http1.WriteField(bw, k, v)
		}
	}
	if hsts := fc.s.opts.HSTS; hsts != "" && fc.tls != nil && w.h["Strict-Transport-Security"] == nil {
		http1.WriteField(bw, "Strict-Transport-Security", hsts)
	}
	if _, ok := w.h["Date"]; !ok {
		bw.WriteString("Date: ")
		bw.Write(w.httpDate())
		bw.WriteString("\r\n")
	}
	if w.chunked {
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if fc.closeAfter || fc.s.closing.Load() || fc.s.lameDuck.Load() {
		fc.closeAfter = true
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

// switchHead writes and sends a 101 answer: its fields but those of
// framing, and Connection: Upgrade. The connection is then the new
// protocol's (Exchange.Tunnel).
func (w *Writer) switchHead() {
	w.wrote, w.switched = true, true
	w.statusLine(http.StatusSwitchingProtocols)
	bw := &w.fc.bw
	for k, vs := range w.h {
		switch {
		case !http1.ValidToken(k), k == "Connection", k == "Transfer-Encoding", k == "Content-Length":
			continue
		}
		for _, v := range vs {
			http1.WriteField(bw, k, v)
		}
	}
	bw.WriteString("Connection: Upgrade\r\n\r\n")
	if bw.Flush() != nil {
		w.fail()
	}
}

func (w *Writer) statusLine(code int) {
	w.fc.takeWriter()
	bw := &w.fc.bw
	bw.WriteString("HTTP/1.1 ")
	bw.Write(strconv.AppendInt(w.fc.scratch[:0], int64(code), 10))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(code))
	bw.WriteString("\r\n")
}

// WriteInterim sends an interim (1xx) answer with fields h at once, before
// the final one (103 Early Hints), as the app sent it.
func (w *Writer) WriteInterim(code int, h http.Header) {
	if w.wrote || code <= http.StatusSwitchingProtocols || code >= 200 || w.fc.x.Req.ProtoMinor == 0 {
		// (100 Continue is the front's own: see sendContinue. An
		// HTTP/1.0 client would take a 1xx for the final answer.)
		return
	}
	w.statusLine(code)
	for k, vs := range h {
		if !http1.ValidToken(k) {
			continue
		}
		for _, v := range vs {
			http1.WriteField(&w.fc.bw, k, v)
		}
	}
	w.fc.bw.WriteString("\r\n")
	if w.fc.bw.Flush() != nil {
		w.fail()
		return
	}
	// Sent: the final answer, maybe long in coming, takes a write
	// buffer again for its head.
	w.fc.putWriter()
}

func (w *Writer) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !w.bodyOK || len(p) == 0 {
		return len(p), nil
	}
	if w.failed {
		return 0, ErrClientWrite
	}
	var tooLong error
	if w.remaining >= 0 {
		if int64(len(p)) > w.remaining {
			p, tooLong = p[:w.remaining], ErrBodyTooLong
		}
		w.remaining -= int64(len(p))
	}
	bw := &w.fc.bw
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
		return n, ErrClientWrite
	}
	return n, tooLong
}

// Flush sends what is buffered, for streamed responses.
func (w *Writer) Flush() {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if !w.fc.bw.held() {
		return // a 101's connection, taken over: the tunnel's now
	}
	if w.fc.bw.Flush() != nil {
		w.fail()
	}
}

func (w *Writer) fail() {
	w.failed = true
	w.fc.closeAfter = true
	w.fc.watch.cancel()
}

// Abort ends a response cut short: the client must see the connection
// close, not a complete response.
func (w *Writer) Abort() {
	w.failed = true
	w.fc.closeAfter = true
	w.fc.cut = true
	if w.fc.bw.held() {
		w.fc.bw.Flush()
	}
}

// end completes the response: the last chunk and the trailers, then one
// flush. A request nothing was written for (its client is gone) gets no
// answer: the connection closes.
func (w *Writer) end() {
	fc := w.fc
	if !w.wrote || w.failed || w.switched {
		fc.closeAfter = true
		return
	}
	bw := &fc.bw
	if w.chunked {
		bw.WriteString("0\r\n")
		var trailer http.Header
		if w.trailer != nil {
			trailer = *w.trailer
		}
		for k, vs := range trailer {
			if !http1.ValidToken(k) {
				continue
			}
			for _, v := range vs {
				http1.WriteField(bw, k, v)
			}
		}
		bw.WriteString("\r\n")
	}
	if w.remaining > 0 {
		fc.closeAfter = true // shorter than declared
	}
	fc.primeSendWait()
	fc.lastSend = fc.closeAfter
	err := bw.Flush()
	fc.sendWait, fc.lastSend = false, false
	if err != nil {
		fc.waitedTo = 0
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
func (w *Writer) httpDate() []byte {
	now := time.Now()
	if sec := now.Unix(); sec != w.dateSec || w.date == nil {
		w.dateSec = sec
		w.date = now.UTC().AppendFormat(w.date[:0], http.TimeFormat)
	}
	return w.date
}
