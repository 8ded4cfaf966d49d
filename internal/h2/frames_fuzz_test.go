package h2_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// FuzzServeConnFrames writes fuzzed bytes to a connection after the
// client's preface and SETTINGS, then closes its side, and checks that
// the server neither panics nor hangs: ServeConn returns, what it wrote
// is well-formed HTTP/2 frames, and every request its handler was given
// holds to RFC 9113 §8 (a method, a path that is one, no
// connection-specific field).
func FuzzServeConnFrames(f *testing.F) {
	for _, seed := range frameSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var mu sync.Mutex
		var bad []string
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			if why := malformed(r); why != "" {
				bad = append(bad, why)
			}
			mu.Unlock()
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, "ok")
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cli, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		srvSide, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			(&h2.Server{IdleTimeout: time.Second, PrefaceTimeout: time.Second, WriteTimeout: time.Second}).ServeConn(context.Background(), srvSide, h)
		}()
		// The whole input, then the end of the client's side: the server
		// acts on every frame, reads the end and ends the connection.
		var pre bytes.Buffer
		pre.WriteString(http2.ClientPreface)
		http2.NewFramer(&pre, nil).WriteSettings()
		pre.Write(in)
		go func() {
			cli.Write(pre.Bytes())
			cli.(*net.TCPConn).CloseWrite()
		}()
		cli.SetReadDeadline(time.Now().Add(10 * time.Second))
		out := &bytes.Buffer{}
		io.Copy(out, cli)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("ServeConn did not return after the client's side ended")
		}
		fr := http2.NewFramer(nil, out)
		fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
		for {
			if _, err := fr.ReadFrame(); err == io.EOF {
				break
			} else if err != nil {
				t.Fatalf("the server wrote a frame the client cannot read: %v", err)
			}
		}
		if len(bad) > 0 {
			t.Errorf("the handler was given malformed requests: %v", bad)
		}
	})
}

// malformed says what is wrong with a request the handler was given, or
// "" when nothing is.
func malformed(r *http.Request) string {
	switch {
	case r.Method == "" || strings.ContainsAny(r.Method, " \t\r\n"):
		return "method " + r.Method
	case r.Method != http.MethodConnect && r.RequestURI != "*" && !strings.HasPrefix(r.RequestURI, "/"):
		return "path " + r.RequestURI
	}
	for _, k := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"} {
		if _, ok := r.Header[k]; ok {
			return "field " + k
		}
	}
	if te := r.Header["Te"]; len(te) > 0 && (len(te) != 1 || te[0] != "trailers") {
		return "te " + strings.Join(te, ",")
	}
	return ""
}

// frameSeeds are frame sequences a client sends: a GET, a POST with a
// body and trailers, a padded DATA, CONTINUATION, PING, WINDOW_UPDATE,
// RST_STREAM, PRIORITY, GOAWAY.
func frameSeeds(f *testing.F) [][]byte {
	f.Helper()
	block := func(fields ...string) []byte {
		var b bytes.Buffer
		e := hpack.NewEncoder(&b)
		for i := 0; i+1 < len(fields); i += 2 {
			e.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return b.Bytes()
	}
	get := block(":method", "GET", ":scheme", "http", ":authority", "a.test", ":path", "/x")
	post := block(":method", "POST", ":scheme", "http", ":authority", "a.test", ":path", "/up", "content-length", "3", "trailer", "x-sum")
	var seeds [][]byte
	add := func(write func(fr *http2.Framer)) {
		var b bytes.Buffer
		write(http2.NewFramer(&b, nil))
		seeds = append(seeds, b.Bytes())
	}
	add(func(fr *http2.Framer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: get, EndStream: true, EndHeaders: true})
	})
	add(func(fr *http2.Framer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: post, EndHeaders: true})
		fr.WriteDataPadded(1, false, []byte("abc"), make([]byte, 7))
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block("x-sum", "1"), EndStream: true, EndHeaders: true})
	})
	add(func(fr *http2.Framer) {
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: get[:4], EndStream: true})
		fr.WriteContinuation(3, true, get[4:])
		fr.WritePing(false, [8]byte{1})
		fr.WriteWindowUpdate(0, 1000)
		fr.WriteRSTStream(3, http2.ErrCodeCancel)
	})
	add(func(fr *http2.Framer) {
		fr.WritePriority(5, http2.PriorityParam{StreamDep: 5})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 7, BlockFragment: get, EndStream: true, EndHeaders: true})
		fr.WriteGoAway(0, http2.ErrCodeNo, nil)
	})
	return seeds
}
