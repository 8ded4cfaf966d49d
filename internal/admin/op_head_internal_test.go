package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// slowDrain is Ops whose Drain says nothing until released.
type slowDrain struct {
	Ops
	release chan struct{}
}

func (o slowDrain) Drain(ctx context.Context, on bool, p supervisor.Progress) error {
	<-o.release
	p("drained")
	return nil
}

// An operation's answer head comes as it begins, so a client that bounds
// its wait for the head (a gatehouse that accepts and never answers is an
// error, not a wait for good) still waits out an operation that says
// nothing for longer than that bound.
func TestOpWaitsForItsHeadWithinTheTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	mux := http.NewServeMux()
	registerOps(mux, slowDrain{release: release})
	mux.HandleFunc("POST /wedged", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cl := NewClient(srv.URL, "")
	cl.HTTP.Timeout = 200 * time.Millisecond

	t.Run("never answered", func(t *testing.T) {
		done := make(chan error, 1)
		go func() { done <- cl.Op(context.Background(), "/wedged", nil) }()
		select {
		case err := <-done:
			if err == nil {
				t.Error("an operation never answered succeeded")
			}
		case <-time.After(30 * time.Second):
			t.Fatal("an operation never answered still waits 30s on, with a timeout of 200ms")
		}
	})
	t.Run("silent for longer than the timeout", func(t *testing.T) {
		time.AfterFunc(4*cl.HTTP.Timeout, func() { close(release) })
		var lines []string
		err := cl.Op(context.Background(), "/api/drain", func(l string) { lines = append(lines, l) })
		if err != nil || len(lines) != 1 {
			t.Errorf("an operation silent for 4x the timeout: %v, lines %q; want it waited for", err, lines)
		}
		var he *HTTPError
		if errors.As(err, &he) {
			t.Errorf("answered %d", he.Status)
		}
	})
}
