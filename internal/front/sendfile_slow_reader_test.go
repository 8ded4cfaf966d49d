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
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// slowSocketDialer dials with a small receive buffer, set before
// connecting so that the window stays small.
var slowSocketDialer = net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
	c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
	return nil
}}

// sendfileHandler answers with the file at name by the writer's ReadFrom,
// with the server's send buffer made small (so the kernel holds little of
// the file beyond what the client took), and reports what ReadFrom
// returned on sent, when not nil.
func sendfileHandler(t *testing.T, s *atomic.Pointer[Server], name string, sent chan<- error) *limStub {
	return &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
		sockets(s.Load(), func(fd int) { syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_SNDBUF, 16<<10) })
		f, err := os.Open(name)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		fi, _ := f.Stat()
		w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
		w.WriteHeader(http.StatusOK)
		_, err = w.(io.ReaderFrom).ReadFrom(f)
		if sent != nil {
			sent <- err
		}
	}}
}

// A file sent by sendfile is bounded by SendTimeout the way an answer
// sent through Write is: a client that keeps reading, however slowly, is
// not cut off; only one that stops for SendTimeout is. The client here
// reads at a steady ~400 KB/s with both socket buffers small, so a MiB
// takes it over two seconds while no pause between its reads comes near
// SendTimeout (one second).
func TestSendfileSlowReaderNotCutOff(t *testing.T) {
	const size = 1 << 20
	content := bytes.Repeat([]byte("slow-reader-sendfile."), size/21+1)[:size]
	name := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(name, content, 0o644); err != nil {
		t.Fatal(err)
	}
	var s atomic.Pointer[Server]
	srv, addr := parkServe(t, sendfileHandler(t, &s, name, nil), Options{SendTimeout: time.Second})
	s.Store(srv)
	c, err := slowSocketDialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(c, 4<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var got bytes.Buffer
	buf := make([]byte, 8<<10)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	for {
		<-tick.C
		n, err := io.ReadFull(resp.Body, buf)
		got.Write(buf[:n])
		if err != nil {
			if err != io.EOF && err != io.ErrUnexpectedEOF {
				t.Fatalf("after %d of %d bytes: %v", got.Len(), size, err)
			}
			break
		}
	}
	if got.Len() != size || !bytes.Equal(got.Bytes(), content) {
		t.Fatalf("the client read %d of %d bytes (equal: %v): a reading client was cut off", got.Len(), size, bytes.Equal(got.Bytes(), content))
	}
}

// A client that stops reading a file sent by sendfile is given up on
// after SendTimeout: ReadFrom fails and the connection closes.
func TestSendfileStoppedReaderCutOff(t *testing.T) {
	name := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(name, bytes.Repeat([]byte("x"), 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	var s atomic.Pointer[Server]
	srv, addr := parkServe(t, sendfileHandler(t, &s, name, sent), Options{SendTimeout: 200 * time.Millisecond})
	s.Store(srv)
	c, err := slowSocketDialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sent:
		if err == nil {
			t.Fatal("ReadFrom sent 8 MiB to a client that read nothing")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ReadFrom still sends to a client that stopped reading, 30s on")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if err != nil || n >= 8<<20 {
		t.Errorf("the client read %d bytes then %v; want the connection closed short of the file", n, err)
	}
}

// A client that closes its connection in the middle of a file sent by
// sendfile ends the send at once: ReadFrom fails, not after SendTimeout.
func TestSendfileClientClosesMidway(t *testing.T) {
	name := filepath.Join(t.TempDir(), "big.bin")
	if err := os.WriteFile(name, bytes.Repeat([]byte("x"), 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	var s atomic.Pointer[Server]
	srv, addr := parkServe(t, sendfileHandler(t, &s, name, sent), Options{SendTimeout: time.Hour})
	s.Store(srv)
	c, err := slowSocketDialer.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	select {
	case err := <-sent:
		if err == nil {
			t.Fatal("ReadFrom reports the whole file sent to a client that closed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ReadFrom still sends to a closed connection, 30s on")
	}
}
