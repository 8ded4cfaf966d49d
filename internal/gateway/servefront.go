package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"time"
)

// serveFront routes, forwards and logs the request fc parsed: ServeHTTP
// for the front's own connections. The outbound headers and the copy of
// the response are done in place, the way ReverseProxy with Rewrite does
// them (see outbound and copyResponse); the retry loop, the classifier and
// the error pages are the same code as for every other request.
func (g *Gateway) serveFront(fc *frontConn) {
	start := time.Now()
	st := getState()
	fc.st = st
	defer func() {
		fc.st = nil
		putState(st)
	}()
	r := fc.req
	g.name(st, fc.requestID)
	w := &fc.w
	w.reset(st.requestID)
	rw := &fc.rw
	*rw = responseWriter{ResponseWriter: w}
	if a := g.route(rw, r, st); a != nil {
		g.forward(fc, a, rw, st, start)
	}
	// Logged before the last flush, as net/http's ServeHTTP is: a client
	// that has its answer finds the request in the access log.
	g.finish(rw, r, st, start)
	w.end()
}

// errUnaskedSwitch: the app answered 101 to a request that asked for no
// upgrade (upgrades go to the fallback server).
var errUnaskedSwitch = errors.New("the app switched protocols when no upgrade was requested")

func (g *Gateway) forward(fc *frontConn, a *appProxy, rw *responseWriter, st *reqState, start time.Time) {
	r := fc.req
	outbound(fc, st)
	resp, err := a.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusSwitchingProtocols {
		st.upgraded = false
		err = errUnaskedSwitch // errorHandler closes the connection it came on
	}
	if err == nil && time.Since(start) > lateCheck && fc.ctx.check() {
		// The client left while the app worked: its answer is not
		// written, and the request is logged client_closed. (A failure is
		// still classified by errorHandler, so that finish can tell an
		// upstream timeout from a client that gave up.)
		resp.Body.Close()
		return
	}
	if err != nil {
		g.errorHandler(rw, r, err)
		return
	}
	copyResponse(fc, rw, resp)
}

// lateCheck is how long a request may take before the client is checked
// for having left, once, before its answer is written. Quicker requests
// skip the syscall; a client gone within them is found by the write.
const lateCheck = time.Millisecond

// outbound turns the client's request into the app's, as rewrite does
// for ReverseProxy: hop-by-hop headers removed (TE: trailers kept),
// Forwarded and X-Forwarded-* replaced by the gateway's own, and the
// request id set. The header map is the connection's, reused.
func outbound(fc *frontConn, st *reqState) {
	h := fc.req.Header
	for _, k := range fc.hop {
		delete(h, textproto.CanonicalMIMEHeaderKey(k))
	}
	trailers := false
	for _, v := range h["Te"] {
		trailers = trailers || hasToken(v, "trailers")
	}
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if trailers {
		h["Te"] = fc.one("trailers")
	}
	delete(h, "Forwarded")
	h["X-Forwarded-For"] = fc.one(fc.ip)
	h["X-Forwarded-Host"] = fc.one(fc.req.Host)
	h["X-Forwarded-Proto"] = fc.one("http")
	h["X-Request-Id"] = fc.one(st.requestID)
}

// hopHeaders are the hop-by-hop headers a proxy does not forward, the
// same list as ReverseProxy's.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// one is a one-value header slice backed by the connection's store.
func (fc *frontConn) one(v string) []string {
	fc.vals = append(fc.vals, v)
	n := len(fc.vals)
	return fc.vals[n-1 : n : n]
}

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
func copyResponse(fc *frontConn, rw *responseWriter, resp *http.Response) {
	defer resp.Body.Close()
	w := &fc.w
	removeHopByHop(resp.Header)
	w.h = resp.Header
	w.resp = resp
	rw.WriteHeader(resp.StatusCode)
	stream := resp.ContentLength < 0 || isEventStream(resp.Header)
	if stream {
		// The head goes out now, as ReverseProxy sends it: an event
		// stream's client must not wait for the first event to know it is
		// open. A client leaving the stream is watched for, and ends it
		// (see responseBody).
		w.Flush()
		fc.ctx.watch()
	}
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := rw.Write(buf[:n]); werr != nil {
				if !errors.Is(werr, errClientWrite) {
					w.abort()
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
			w.abort()
			return
		}
	}
}

func isEventStream(h http.Header) bool {
	ct := h["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 17 && strings.EqualFold(ct[0][:17], "text/event-stream")
}

// clientGone reports whether the client of a request waiting for the app
// went away: for a front connection, a look at its socket.
func clientGone(ctx context.Context) bool {
	if c, ok := ctx.(*clientCtx); ok {
		return c.check()
	}
	return ctx.Err() != nil
}
