package front

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// While the old process of an upgrade drains, a client that sends a
// request on a connection the old process accepted, within the idle grace,
// is answered, with Connection: close, and not cut off: the request may be
// a POST, which the client cannot safely send again, and on a connection
// that was never used the client retries nothing at all. That holds for a
// connection that was idle when the drain began; for one whose answer was
// on its way then, its head already out saying keep-alive (its client
// reuses the connection the moment the answer ends); and for a TLS
// connection whose handshake was under way.
func TestShutdownIdleGraceAnswersTheNextRequest(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t, "http/1.1")
	for _, tc := range []struct {
		name string
		// streaming: the first request's answer has its head out before
		// the drain begins and its end after.
		streaming bool
		// handshakeLate: TLS, with the handshake only after the drain
		// began, and no request before it.
		handshakeLate bool
	}{
		{name: "idle when the drain begins"},
		{name: "answer streaming when the drain begins", streaming: true},
		{name: "TLS handshake under way when the drain begins", handshakeLate: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			headOut, release := make(chan struct{}), make(chan struct{})
			stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/stream" {
					body, _ := io.ReadAll(r.Body)
					limAnswer(w, http.StatusOK, r.Method+" "+string(body))
					return
				}
				w.WriteHeader(http.StatusOK) // chunked
				io.WriteString(w, "part 1;")
				w.(http.Flusher).Flush()
				close(headOut)
				<-release
				io.WriteString(w, "part 2")
			}}
			opts := Options{}
			if tc.handshakeLate {
				opts.TLS = srvTLS
			}
			s, addr := parkServe(t, stub, opts)
			raw, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			raw.SetDeadline(time.Now().Add(20 * time.Second))
			var c net.Conn = raw
			if tc.handshakeLate {
				c = tls.Client(raw, cliTLS)
			}
			br := bufio.NewReader(c)
			readAnswer := func(what string) *http.Response {
				t.Helper()
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("%s was not answered: %v", what, err)
				}
				resp.Body.Close() // reads it to its end
				return resp
			}
			switch {
			case tc.streaming:
				io.WriteString(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
				<-headOut
			case tc.handshakeLate:
				waitConns(t, s, 1) // accepted; the handshake waits for the client
			default:
				io.WriteString(c, "GET /quick HTTP/1.1\r\nHost: x\r\n\r\n")
				if readAnswer("the first request").Close {
					t.Fatal("the first answer says Connection: close before any drain")
				}
			}
			// The drain, as after an upgrade: idle connections get 2s.
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			drained := make(chan error, 1)
			go func() { drained <- s.ShutdownIdleGrace(ctx, 2*time.Second) }()
			waitClosing(t, s)
			close(release)
			if tc.streaming {
				if readAnswer("the streaming request").Close {
					t.Fatal("the streaming answer's head went out before the drain, yet says Connection: close")
				}
			}
			// The client sends on the connection a moment later, well
			// within the grace.
			time.Sleep(100 * time.Millisecond)
			io.WriteString(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("the POST sent within the idle grace was not answered: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			type answer struct {
				Status int
				Body   string
				Close  bool
			}
			if diff := cmp.Diff(answer{200, "POST hello", true}, answer{resp.StatusCode, string(body), resp.Close}); diff != "" {
				t.Errorf("answer to the POST (-want +got):\n%s", diff)
			}
			if err := <-drained; err != nil {
				t.Errorf("ShutdownIdleGrace: %v", err)
			}
		})
	}
}

// waitClosing waits until s has begun its shutdown.
func waitClosing(t *testing.T, s *Server) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "the shutdown to begin", s.closing.Load)
}

// waitConns waits until s serves n connections.
func waitConns(t *testing.T, s *Server, n int) {
	t.Helper()
	waitConnsWithin(t, s, n, 10*time.Second)
}

// waitConnsWithin waits up to d until s serves n connections.
func waitConnsWithin(t *testing.T, s *Server, n int, d time.Duration) {
	t.Helper()
	testutil.WaitFor(t, d, "the server to have "+strconv.Itoa(n)+" connections", func() bool {
		_, total := countConns(s, func(*conn) bool { return false })
		return total == n
	})
}

// An HTTP/2 connection whose handshake ends after the drain of an upgrade
// began is told to go away (GOAWAY, and its client retries on a new
// connection, which the new process accepts), not closed without a word,
// which fails the request its client sent with the preface.
func TestShutdownGoesAwayOnAnH2ConnectionThatBeganDuringIt(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := testTLS(t, "h2")
	s, addr := parkServe(t, protoStub(), Options{TLS: srvTLS})
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(20 * time.Second))
	waitConns(t, s, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- s.ShutdownIdleGrace(ctx, 2*time.Second) }()
	waitClosing(t, s)

	cfg := cliTLS.Clone()
	cfg.NextProtos = []string{"h2"}
	c := tls.Client(raw, cfg)
	if err := c.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte(http2.ClientPreface))
	fr := http2.NewFramer(c, c)
	fr.WriteSettings()
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "127.0.0.1"}, {":path", "/x"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndStream: true, EndHeaders: true})
	// Either stream 1 is answered, or the connection goes away with a
	// GOAWAY that tells the client to retry it elsewhere.
	var frames []string
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("the connection ended (%v) after frames %v: neither an answer to stream 1 nor GOAWAY", err, frames)
		}
		frames = append(frames, f.Header().Type.String())
		if h, ok := f.(*http2.HeadersFrame); ok && h.StreamID == 1 {
			break
		}
		if _, ok := f.(*http2.GoAwayFrame); ok {
			break
		}
	}
	c.Close()
	if err := <-drained; err != nil {
		t.Errorf("ShutdownIdleGrace: %v", err)
	}
}
