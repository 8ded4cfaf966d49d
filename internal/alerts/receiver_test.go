package alerts

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// receiver is a real webhook server on loopback that records what it is
// sent. answer, if set, picks each request's status (n counts from 1).
type receiver struct {
	*httptest.Server
	answer func(n int) int
	// hang, when not nil, makes every request wait until it is closed.
	hang chan struct{}

	mu     sync.Mutex
	n      int
	bodies [][]byte
	heads  []http.Header
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	t.Helper()
	r := &receiver{answer: answer}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

// newHangingReceiver never answers until the test ends.
func newHangingReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{hang: make(chan struct{})}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		close(r.hang)
		r.Close()
	})
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.n++
	n := r.n
	r.mu.Unlock()
	if r.hang != nil {
		select {
		case <-r.hang:
		case <-req.Context().Done():
		}
		return
	}
	status := http.StatusOK
	if r.answer != nil {
		status = r.answer(n)
	}
	if status == http.StatusOK {
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.heads = append(r.heads, req.Header.Clone())
		r.mu.Unlock()
	}
	w.WriteHeader(status)
}

// requests is how many requests arrived, delivered or not.
func (r *receiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
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
