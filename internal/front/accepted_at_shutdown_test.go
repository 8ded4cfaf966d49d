package front

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// acceptHeldListener hands its first accepted connection to Serve only once
// release is closed: what the scheduler may do to Serve between the
// accept and its next step, while Shutdown closes the listener.
type acceptHeldListener struct {
	net.Listener
	// hold: whether the first accepted connection's hand-over is held
	// until release.
	hold bool
	n    int
	// accepted has a value for each connection accepted.
	accepted chan struct{}
	release  chan struct{}
	closed   chan struct{}
	once     sync.Once
}

func (l *acceptHeldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted <- struct{}{}
	if l.n++; l.n == 1 && l.hold {
		<-l.release
	}
	return c, nil
}

func (l *acceptHeldListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

// A connection the kernel has handed to Serve (accept returned) before the
// drain of an upgrade or a stop closed the listener is this process's to
// answer: the new process sharing the socket never sees it, and its client
// has sent its request. It is served, as the drain's last (Connection:
// close), not closed without a word, whether it was accepted with a slot
// free or had to wait for one under MaxConnections.
func TestConnectionAcceptedAsShutdownBeginsIsAnswered(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// full: MaxConnections 1, taken by a request its handler holds
		// until the drain began, so the connection accepted waits for
		// the slot.
		full bool
	}{
		{name: "accepted with a slot free"},
		{name: "accepted waiting for a slot", full: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			busy, unblock := make(chan struct{}), make(chan struct{})
			stub := &limStub{handle: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/busy" {
					close(busy)
					<-unblock
				}
				limAnswer(w, http.StatusOK, r.Method+" "+r.URL.Path)
			}}
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hl := &acceptHeldListener{Listener: raw, hold: !tc.full, accepted: make(chan struct{}, 2), release: make(chan struct{}), closed: make(chan struct{})}
			opts := Options{}
			if tc.full {
				opts.MaxConnections = 1
			}
			s := serveOn(t, stub, opts, hl)
			dial := func() (net.Conn, *bufio.Reader) {
				c, err := net.Dial("tcp", raw.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				c.SetDeadline(time.Now().Add(20 * time.Second))
				return c, bufio.NewReader(c)
			}
			var first net.Conn
			var firstR *bufio.Reader
			if tc.full {
				first, firstR = dial()
				io.WriteString(first, "GET /busy HTTP/1.1\r\nHost: x\r\n\r\n")
				<-hl.accepted
				<-busy
			}
			c, br := dial()
			io.WriteString(c, "GET /late HTTP/1.1\r\nHost: x\r\n\r\n")
			// Accepted: held between the accept and Serve, or waiting in
			// Serve for the one slot.
			<-hl.accepted
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			drained := make(chan error, 1)
			go func() { drained <- s.Shutdown(ctx) }()
			<-hl.closed // the drain began: the listener is closed
			if tc.full {
				close(unblock)
				resp, err := http.ReadResponse(firstR, nil)
				if err != nil {
					t.Fatalf("the busy request was not answered: %v", err)
				}
				resp.Body.Close()
			} else {
				close(hl.release)
			}
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("the request on the connection accepted as the drain began was not answered: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			type answer struct {
				Status int
				Body   string
				Close  bool
			}
			if diff := cmp.Diff(answer{200, "GET /late", true}, answer{resp.StatusCode, string(body), resp.Close}); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if err := <-drained; err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}
