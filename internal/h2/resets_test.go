package h2_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// A stream the client cancels cancels its request's context, and its
// body's reads say how it ended.
func TestClientResetCancelsTheHandler(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	results := make(chan handlerResult, 1)
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cancel" {
			io.WriteString(w, "ok")
			return
		}
		close(started)
		<-r.Context().Done()
		_, err := r.Body.Read(make([]byte, 10))
		results <- handlerResult{err: err, ctx: r.Context().Err()}
	}), nil)
	c := dialRaw(t, ts)
	c.post(1, "/cancel")
	await(t, started, "the handler")
	if err := c.Framer.WriteRSTStream(1, http2.ErrCodeCancel); err != nil {
		t.Fatal(err)
	}
	r := awaitResult(t, results)
	if r.ctx == nil {
		t.Error("the request's context is not done")
	}
	var se http2.StreamError
	if !errors.As(r.err, &se) || se.Code != http2.ErrCodeCancel {
		t.Errorf("the body's read returned %v, want a StreamError with CANCEL", r.err)
	}
	// The connection serves on, and sends nothing more on the canceled
	// stream.
	c.get(3, "/next")
	a := c.readAnswer(3)
	if string(a.body) != "ok" || a.reset != nil {
		t.Errorf("the next stream got %q, reset %v; want %q", a.body, a.reset, "ok")
	}
	for _, f := range c.ping() {
		if f.Header().StreamID == 1 {
			t.Errorf("the canceled stream got %v", f)
		}
	}
}

// A handler's panic resets its stream with INTERNAL_ERROR and no more;
// only a panic other than http.ErrAbortHandler is logged.
func TestHandlerPanicResetsTheStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler func(w http.ResponseWriter)
		// wantStatuses and wantBody are what left before the reset.
		wantStatuses []string
		wantBody     string
		logged       bool
	}{
		{
			name:    "before the answer",
			handler: func(w http.ResponseWriter) { panic("boom") },
			logged:  true,
		},
		{
			name: "after a flush",
			handler: func(w http.ResponseWriter) {
				io.WriteString(w, "partial")
				w.(http.Flusher).Flush()
				panic("boom")
			},
			wantStatuses: []string{"200"},
			wantBody:     "partial",
			logged:       true,
		},
		{
			name: "with a small body held back",
			handler: func(w http.ResponseWriter) {
				io.WriteString(w, "held")
				panic("boom")
			},
			logged: true,
		},
		{
			name:    "http.ErrAbortHandler",
			handler: func(w http.ResponseWriter) { panic(http.ErrAbortHandler) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var logged []string
			srv := &h2.Server{ErrorLog: func(format string, args ...any) {
				mu.Lock()
				logged = append(logged, fmt.Sprintf(format, args...))
				mu.Unlock()
			}}
			ts := startServer(t, srv, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/panic" {
					tt.handler(w)
				}
				io.WriteString(w, "ok")
			}), nil)
			c := dialRaw(t, ts)
			c.get(1, "/panic")
			a := c.readAnswer(1)
			if a.reset == nil || *a.reset != http2.ErrCodeInternal {
				t.Errorf("the stream ended with reset %v, want INTERNAL_ERROR", a.reset)
			}
			if diff := cmp.Diff(tt.wantStatuses, a.statuses()); diff != "" || string(a.body) != tt.wantBody {
				t.Errorf("before the reset: statuses (-want +got):\n%s, body %q, want %q", diff, a.body, tt.wantBody)
			}

			c.get(3, "/next")
			next := c.readAnswer(3)
			if diff := cmp.Diff([]string{"200"}, next.statuses()); diff != "" || string(next.body) != "ok" {
				t.Errorf("the next stream: statuses (-want +got):\n%s, body %q", diff, next.body)
			}
			mu.Lock()
			defer mu.Unlock()
			if got := len(logged) > 0; got != tt.logged {
				t.Errorf("logged %q, want logged: %v", logged, tt.logged)
			}
		})
	}
}
