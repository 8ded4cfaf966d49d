package admin_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// A gatehouse that accepts the log stream's request but never answers
// it (wedged) fails the stream within the client's timeout, as every
// other request of the client does, rather than leaving logs -f waiting
// for good; a stream that is answered lasts beyond that timeout.
func TestStreamWaitsForItsHeadWithinTheTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /wedged", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		select {
		case <-release:
			w.Write([]byte("still there\n"))
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(release)
	defer http.DefaultClient.CloseIdleConnections()
	cl := admin.NewClient(srv.URL, "")
	cl.HTTP.Timeout = 200 * time.Millisecond

	done := make(chan error, 1)
	go func() {
		body, err := cl.Stream(context.Background(), "/wedged")
		if err == nil {
			body.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("a stream never answered opened without an error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a stream never answered still waits 30s on, with a timeout of 200ms")
	}

	body, err := cl.Stream(context.Background(), "/stream")
	if err != nil {
		t.Fatalf("a stream answered at once: %v", err)
	}
	defer body.Close()
	// Past the timeout, the stream is still open: it was the head's.
	time.Sleep(2 * cl.HTTP.Timeout)
	release <- struct{}{}
	buf := make([]byte, 64)
	if n, err := body.Read(buf); n == 0 {
		t.Errorf("a stream answered at once was cut after the timeout: %v", err)
	}
}

// gatehouse exec likewise: the switch to the command's protocol comes
// once the command started, and a gatehouse that accepts the request but
// never answers it fails the exec within the client's timeout.
func TestExecWaitsForItsSwitchWithinTheTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	cl := admin.NewClient(srv.URL, "")
	cl.HTTP.Timeout = 200 * time.Millisecond
	done := make(chan error, 1)
	go func() {
		_, err := cl.Exec(context.Background(), "/api/apps/web/exec", []string{"true"}, nil, io.Discard, io.Discard)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("an exec never answered ran without an error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("an exec never answered still waits 30s on, with a timeout of 200ms")
	}
}
