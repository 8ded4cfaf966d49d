package front

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// handed is what a Handler was handed: the request as the front filled
// it in, what reading its body gave, and the refusal, if any.
type handed struct {
	Method        string
	RequestURI    string
	Host          string
	Proto         string
	ContentLength int64
	Body          string
	TLS           bool
	Upgrade       string
	Reject        string // the refusal's cause; "" when served
	// bodyErr is the error that ended the body's read (not io.EOF).
	bodyErr error
}

// ignoreBodyErr compares handed values on what they say, not the error.
var ignoreBodyErr = cmpopts.IgnoreUnexported(handed{})

// xStub is a Handler that records what each exchange was handed. A
// refused exchange is answered with its refusal's status; a served one
// is given to serve, which reads what it wants of the body into h and
// answers (nil: read the whole body, answer 200 "served").
type xStub struct {
	serve func(x *Exchange, h *handed)
	got   chan handed
}

func newXStub(serve func(x *Exchange, h *handed)) *xStub {
	return &xStub{serve: serve, got: make(chan handed, 64)}
}

func (s *xStub) Serve(x *Exchange) {
	r := x.Req
	h := handed{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Proto: r.Proto,
		ContentLength: r.ContentLength, TLS: r.TLS != nil, Upgrade: x.Upgrade}
	switch {
	case x.Reject != nil:
		h.Reject = string(x.Reject.Cause)
		if !x.Answered {
			x.W.Header().Set("Content-Length", "0")
			x.W.WriteHeader(x.Reject.Status())
		}
	case s.serve != nil:
		s.serve(x, &h)
	default:
		readAll(x, &h)
		limAnswer(x.W, http.StatusOK, "served")
	}
	s.got <- h
}

// readAll reads the request's body into h.
func readAll(x *Exchange, h *handed) {
	b, err := io.ReadAll(x.Req.Body)
	h.Body, h.bodyErr = string(b), err
}

// next is what the handler was handed for the next exchange it served.
func (s *xStub) next(t *testing.T) handed {
	t.Helper()
	select {
	case h := <-s.got:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("no exchange reached the handler within 10s")
		return handed{}
	}
}

// nextIs checks that the next exchange was handed want.
func (s *xStub) nextIs(t *testing.T, want handed) handed {
	t.Helper()
	got := s.next(t)
	if diff := cmp.Diff(want, got, ignoreBodyErr); diff != "" {
		t.Errorf("the handler was handed (-want +got):\n%s", diff)
	}
	return got
}

// noMore checks that no other exchange reached the handler (call it once
// the connection is known closed: its goroutine served all it would).
func (s *xStub) noMore(t *testing.T) {
	t.Helper()
	select {
	case h := <-s.got:
		t.Errorf("the handler was handed another exchange: %+v", h)
	default:
	}
}

// rawHead reads one response head, up to and including its empty line,
// as it came.
func (lc *limClient) rawHead(d time.Duration) (string, error) {
	lc.c.SetReadDeadline(time.Now().Add(d))
	var head strings.Builder
	for !strings.HasSuffix(head.String(), "\r\n\r\n") {
		line, err := lc.br.ReadString('\n')
		head.WriteString(line)
		if err != nil {
			return head.String(), err
		}
	}
	return head.String(), nil
}

// mustRawHead is rawHead, failing the test without one.
func (lc *limClient) mustRawHead(d time.Duration) string {
	lc.t.Helper()
	head, err := lc.rawHead(d)
	if err != nil {
		lc.t.Fatalf("no response head within %v: %v (read %q)", d, err, head)
	}
	return head
}

// headFields are the field lines of a raw head, by lower-case name.
func headFields(head string) map[string][]string {
	fields := map[string][]string{}
	lines := strings.Split(strings.TrimSuffix(head, "\r\n\r\n"), "\r\n")
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ":")
		k = strings.ToLower(k)
		fields[k] = append(fields[k], strings.TrimSpace(v))
	}
	return fields
}

// statusLine is a raw head's first line.
func statusLine(head string) string {
	line, _, _ := strings.Cut(head, "\r\n")
	return line
}

// readN reads exactly n bytes within d.
func (lc *limClient) readN(n int, d time.Duration) (string, error) {
	lc.c.SetReadDeadline(time.Now().Add(d))
	b := make([]byte, n)
	m, err := io.ReadFull(lc.br, b)
	return string(b[:m]), err
}

// chunkedBody frames data as chunks of at most size bytes, with the last
// chunk and an empty trailer section.
func chunkedBody(data string, size int) string {
	var b bytes.Buffer
	for len(data) > 0 {
		n := min(size, len(data))
		b.WriteString(strconv.FormatInt(int64(n), 16) + "\r\n" + data[:n] + "\r\n")
		data = data[n:]
	}
	b.WriteString("0\r\n\r\n")
	return b.String()
}
