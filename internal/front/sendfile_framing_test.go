//go:build linux

package front

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// An answer whose body goes by sendfile is framed by its Content-Length,
// whatever the file does: a file longer than declared is cut at it and
// the connection serves the next (pipelined) request; one shorter closes
// the connection after what there was, so the client sees a short body,
// never a next answer taken for the rest of this one. HEAD sends no
// body.
func TestSendfileFramedByContentLength(t *testing.T) {
	const size = 300 << 10
	content := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	name := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(name, content, 0o644); err != nil {
		t.Fatal(err)
	}
	h := &limStub{handle: declaredFile(t, name)}
	addr := limServe(t, h, Options{})
	cases := []struct {
		name     string
		method   string
		declared int
		wantBody int  // bytes of the first answer's body
		wantNext bool // the pipelined second request is answered
	}{
		{"as long as declared", "GET", size, size, true},
		{"longer than declared", "GET", size - 1000, size - 1000, true},
		{"shorter than declared", "GET", size + 1000, size, false},
		{"HEAD", "HEAD", size, 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			req := c.method + " /f?n=" + strconv.Itoa(c.declared) + " HTTP/1.1\r\nHost: x\r\n\r\n"
			if _, err := io.WriteString(conn, req+"GET /f?n=10 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, &http.Request{Method: c.method})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if len(body) != c.wantBody || !bytes.Equal(body, content[:len(body)]) {
				t.Fatalf("first body: %d bytes (a prefix of the file: %v), want %d", len(body), bytes.Equal(body, content[:min(len(body), len(content))]), c.wantBody)
			}
			next, err := http.ReadResponse(br, nil)
			if !c.wantNext {
				if err == nil {
					t.Fatalf("after a body shorter than declared, the connection answered again: %s", next.Status)
				}
				return
			}
			if err != nil {
				t.Fatalf("the pipelined request: %v", err)
			}
			b, _ := io.ReadAll(next.Body)
			if string(b) != string(content[:10]) {
				t.Errorf("the pipelined answer's body is %q, want %q", b, content[:10])
			}
		})
	}
}

// Over TLS a file handed to ReadFrom cannot go by sendfile: it is copied
// through Write, framed the same way, cut at the Content-Length declared
// when the file is longer, and the connection serves on.
func TestSendfileOverTLSFramedByContentLength(t *testing.T) {
	const size = 2 << 20
	content := bytes.Repeat([]byte("tls-copied-body."), size/16)
	name := filepath.Join(t.TempDir(), "f.bin")
	if err := os.WriteFile(name, content, 0o644); err != nil {
		t.Fatal(err)
	}
	srvTLS, cliTLS := testTLS(t, "http/1.1")
	addr := limServe(t, &limStub{handle: declaredFile(t, name)}, Options{TLS: srvTLS})
	tr := &http.Transport{TLSClientConfig: cliTLS, MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for _, n := range []int{size, size - 12345, 10} {
		resp, err := c.Get("https://" + addr + "/f?n=" + strconv.Itoa(n))
		if err != nil {
			t.Fatalf("declared %d: %v", n, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.ProtoMajor != 1 || !bytes.Equal(body, content[:n]) {
			t.Errorf("declared %d: %s, %d bytes (%v), want the file's first %d", n, resp.Proto, len(body), err, n)
		}
	}
}

// declaredFile answers with the file at name through the writer's
// ReadFrom, declaring the Content-Length the query's n says (which may
// be shorter or longer than the file).
func declaredFile(t *testing.T, name string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		declared, _ := strconv.Atoi(r.URL.Query().Get("n"))
		f, err := os.Open(name)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Length", strconv.Itoa(declared))
		w.WriteHeader(http.StatusOK)
		w.(io.ReaderFrom).ReadFrom(f)
	}
}
