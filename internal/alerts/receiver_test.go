package alerts

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// receiver is a real webhook server (net/http) whose connections are
// in-memory pipes, so that it runs in a synctest bubble: a loopback
// socket's I/O would keep the bubble's clock from advancing. It records
// what it is sent and when. answer, if set, answers each request (n
// counts from 1) after whatever wait it likes; nil answers 200 at once.
type receiver struct {
	srv    *http.Server
	conns  chan net.Conn
	closed chan struct{}
	answer func(n int, w http.ResponseWriter) int
	// hang, when not nil, makes every request wait until it is closed.
	hang chan struct{}
	// delay is how long it takes to answer, unless the client gives up.
	delay time.Duration

	mu     sync.Mutex
	n      int
	at     []time.Time // every request's arrival
	bodies [][]byte    // the accepted (2xx) ones
}

// URL is the receivers' address; the in-memory dialer ignores it, and
// the path stands for a webhook's secret.
const receiverURL = "http://hooks.example/services/T0/B0/secret"

// newReceiver serves until the test ends; it must be called in a
// synctest bubble.
func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter) int) *receiver {
	t.Helper()
	r := &receiver{answer: answer, conns: make(chan net.Conn), closed: make(chan struct{})}
	r.serve(t)
	return r
}

// newHangingReceiver accepts and never answers until the test ends.
func newHangingReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{hang: make(chan struct{}), conns: make(chan net.Conn), closed: make(chan struct{})}
	r.serve(t)
	return r
}

func (r *receiver) serve(t *testing.T) {
	r.srv = &http.Server{Handler: http.HandlerFunc(r.handle)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.srv.Serve(memListener{r})
	}()
	t.Cleanup(func() {
		if r.hang != nil {
			close(r.hang)
		}
		close(r.closed)
		r.srv.Close()
		<-done
	})
}

// dial connects to the receiver through a pipe.
func (r *receiver) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case r.conns <- server:
		return client, nil
	case <-r.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// sendTo points q's client at r.
func sendTo(q *notifier, r *receiver) {
	q.client.Transport = &http.Transport{DialContext: r.dial}
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.n++
	n := r.n
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	if r.hang != nil {
		select {
		case <-r.hang:
		case <-req.Context().Done():
		}
		return
	}
	if r.delay > 0 {
		select {
		case <-time.After(r.delay):
		case <-req.Context().Done():
			return
		}
	}
	status := http.StatusOK
	if r.answer != nil {
		status = r.answer(n, w)
	}
	if status/100 == 2 {
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

// arrivals are the times requests arrived, delivered or not.
func (r *receiver) arrivals() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.at...)
}

// received decodes the bodies accepted so far into Ts.
func received[T any](t *testing.T, r *receiver) []T {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]T, len(r.bodies))
	for i, b := range r.bodies {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatalf("body %d %q: %v", i, b, err)
		}
	}
	return out
}

// memListener hands the server the pipes dial makes.
type memListener struct{ r *receiver }

func (l memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.r.conns:
		return c, nil
	case <-l.r.closed:
		return nil, net.ErrClosed
	}
}

func (l memListener) Close() error   { return nil }
func (l memListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
