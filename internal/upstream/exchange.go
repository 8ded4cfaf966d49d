package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"os"
	"strconv"
	"strings"
	"time"
)

// roundTrip sends req over one of u's connections and reads the response
// head, recording in st how far it got. The response body, when there is
// one, owns the connection until it is read to the end (the connection
// goes back to the pool) or closed early (the connection is closed).
func (u *upstream) roundTrip(req *http.Request, st *reqState, deadline time.Time) (*http.Response, *pconn, error) {
	ctx := req.Context()
	pc, reused, idleFor, err := u.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	st.progress.GotConn, st.progress.Reused, st.idleTime = true, reused, idleFor
	pc.conn.SetWriteDeadline(deadline)
	resp, err := exchange(ctx, pc, req, st, deadline)
	if err != nil {
		pc.close()
		return nil, nil, err
	}
	pc.conn.SetDeadline(time.Time{})
	return resp, pc, nil
}

// exchange writes the request and reads the response head, skipping
// interim 1xx responses other than 101 (they are not forwarded).
func exchange(ctx context.Context, pc *pconn, req *http.Request, st *reqState, deadline time.Time) (*http.Response, error) {
	if err := writeRequest(pc.bw, req, st.requestURI); err != nil {
		if isClientBodyError(err) || isDeadline(err) {
			return nil, err
		}
		// The app may have answered before it read the whole request (a
		// 413 or 401 to an upload) and closed: its answer stands.
		if resp := earlyResponse(pc, req); resp != nil {
			st.progress.WroteRequest, st.progress.GotFirstByte = true, true
			return resp, nil
		}
		return nil, err
	}
	st.progress.WroteRequest = true
	st.wroteAt = time.Now()
	for {
		if err := awaitFirstByte(ctx, pc, st.wroteAt, deadline); err != nil {
			return nil, err
		}
		st.progress.GotFirstByte = true
		resp, err := readResponse(pc.br, req, st)
		if err != nil {
			return nil, fmt.Errorf("read response: %w", err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
	}
}

// earlyWait bounds the look for a response after writing the request
// failed. An answer the app sent before closing arrived before the close
// did, so it is already there or never comes.
const earlyWait = 20 * time.Millisecond

// earlyResponse reads a final response the app sent before the request was
// all written, if there is one. The connection is not reused after it.
func earlyResponse(pc *pconn, req *http.Request) *http.Response {
	pc.conn.SetReadDeadline(time.Now().Add(earlyWait))
	for {
		resp, err := http.ReadResponse(pc.br, req)
		switch {
		case err != nil:
			return nil
		case resp.StatusCode >= 200:
			resp.Close = true
			return resp
		}
	}
}

// clientCheck is how often a request waiting for the app's first byte
// checks whether its client went away. Waiting in slices, rather than
// arming a context callback per request, keeps fast requests free of it.
const clientCheck = 250 * time.Millisecond

// awaitFirstByte waits for the response to start, until deadline or the
// client's going away; the head that follows is read under deadline.
func awaitFirstByte(ctx context.Context, pc *pconn, now, deadline time.Time) error {
	for {
		slice := now.Add(clientCheck)
		if slice.After(deadline) {
			slice = deadline
		}
		pc.conn.SetReadDeadline(slice)
		_, err := pc.br.Peek(1)
		if err == nil {
			pc.conn.SetReadDeadline(deadline)
			return nil
		}
		now = time.Now()
		switch {
		case !isDeadline(err):
			return err
		case clientGone(ctx):
			return context.Canceled
		case !now.Before(deadline):
			return err
		}
	}
}

// skipHeaders are written from the request's fields, not its header map.
// Connection is not among them: ReverseProxy has removed the client's
// hop-by-hop headers and sets only "Connection: Upgrade", which an upgrade
// needs.
var skipHeaders = map[string]bool{"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true}

// writeRequest writes an HTTP/1.1 request: the request line, Host, the
// headers ReverseProxy prepared, the body's framing, and the body.
func writeRequest(bw *bufio.Writer, req *http.Request, uri string) error {
	if uri == "" {
		uri = req.URL.RequestURI()
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	bw.WriteString(req.Method)
	bw.WriteByte(' ')
	bw.WriteString(uri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(clean(host))
	bw.WriteString("\r\n")
	for k, vs := range req.Header {
		if skipHeaders[k] {
			continue
		}
		for _, v := range vs {
			if v == "" && k == "User-Agent" {
				continue // ReverseProxy's way of saying "send none"
			}
			writeField(bw, k, v)
		}
	}
	hasBody := req.Body != nil && req.Body != http.NoBody
	chunked := hasBody && req.ContentLength <= 0
	switch {
	case chunked:
		bw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
	case hasBody || req.ContentLength > 0 || expectsBody(req.Method):
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(req.ContentLength, 10))
		bw.WriteString("\r\n\r\n")
	default:
		bw.WriteString("\r\n")
	}
	if hasBody {
		if err := writeBody(bw, req.Body, chunked); err != nil {
			return err
		}
	}
	return bw.Flush()
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

// writeField writes one header line, its value kept on one line.
func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(clean(v))
	bw.WriteString("\r\n")
}

// clean keeps a header value on one line. Values parsed by the server
// cannot hold CR or LF; this guards values set in code.
func clean(v string) string {
	// Two byte scans: ContainsAny's set search costs more on every
	// header value written.
	if strings.IndexByte(v, '\r') >= 0 || strings.IndexByte(v, '\n') >= 0 {
		return lineBreaks.Replace(v)
	}
	return v
}

var lineBreaks = strings.NewReplacer("\r", " ", "\n", " ")

// isDeadline reports whether err is a connection deadline passing.
func isDeadline(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
