package h2_test

import (
	"errors"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// A handler's write deadline bounds its wait for a client that grants
// no window: the write fails, the stream is reset, and the connection
// serves on.
func TestWriteDeadlineEndsTheWaitForWindow(t *testing.T) {
	t.Parallel()
	results := make(chan handlerResult, 1)
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/stuck" {
			io.WriteString(w, "hello")
			return
		}
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
			results <- handlerResult{err: err}
			return
		}
		_, err := w.Write(make([]byte, 64<<10))
		results <- handlerResult{err: err}
	}), nil)
	c := dialRaw(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	c.grant = false
	c.get(1, "/stuck")
	if r := awaitResult(t, results); !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Errorf("the write returned %v, want an error wrapping os.ErrDeadlineExceeded", r.err)
	}
	if a := c.readAnswer(1); a.reset == nil {
		t.Errorf("stream 1 ended with %d bytes and no RST_STREAM", len(a.body))
	} else if len(a.body) != 0 {
		t.Errorf("stream 1 sent %d bytes with no window", len(a.body))
	}

	// The next stream gets the window its answer needs, and its answer.
	c.get(3, "/small")
	if err := c.Framer.WriteWindowUpdate(3, 5); err != nil {
		t.Fatal(err)
	}
	a := c.readAnswer(3)
	if diff := cmp.Diff([]string{"200"}, a.statuses()); diff != "" || a.reset != nil {
		t.Errorf("statuses (-want +got):\n%s, reset %v", diff, a.reset)
	}
	if string(a.body) != "hello" {
		t.Errorf("body %q, want %q", a.body, "hello")
	}
}

// A handler's read deadline bounds its wait for a request body the
// client does not send.
func TestReadDeadlineEndsTheWaitForTheBody(t *testing.T) {
	t.Parallel()
	results := make(chan handlerResult, 1)
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
			results <- handlerResult{err: err}
			return
		}
		_, err := r.Body.Read(make([]byte, 10))
		results <- handlerResult{err: err}
	}), nil)
	c := dialRaw(t, ts)
	c.post(1, "/upload")
	if r := awaitResult(t, results); !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Errorf("the read returned %v, want an error wrapping os.ErrDeadlineExceeded", r.err)
	}
	if diff := cmp.Diff([]string{"200"}, c.readAnswer(1).statuses()); diff != "" {
		t.Errorf("statuses (-want +got):\n%s", diff)
	}
}

// A deadline set while a handler's write or read already waits ends
// that wait, as a net.Conn's does: the handler's other goroutine can
// give up on a client that neither reads nor sends.
func TestDeadlineSetDuringAWaitEndsIt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// waitIn is the function a goroutine waits in, named as in a
		// stack trace.
		waitIn string
		// wait is what waits: on the client's window, or on its body.
		wait        func(w http.ResponseWriter, r *http.Request) error
		setDeadline func(rc *http.ResponseController, t time.Time) error
	}{
		{
			name:   "write",
			waitIn: "h2.(*stream).takeWindow",
			wait: func(w http.ResponseWriter, r *http.Request) error {
				_, err := w.Write(make([]byte, 64<<10))
				return err
			},
			setDeadline: (*http.ResponseController).SetWriteDeadline,
		},
		{
			name:   "read",
			waitIn: "h2.(*requestBody).Read",
			wait: func(w http.ResponseWriter, r *http.Request) error {
				_, err := r.Body.Read(make([]byte, 10))
				return err
			},
			setDeadline: (*http.ResponseController).SetReadDeadline,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			results := make(chan handlerResult, 1)
			ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rc := http.NewResponseController(w)
				waited := make(chan error, 1)
				handler := goroutineID()
				go func() { waited <- tt.wait(w, r) }()
				if !awaitWaitingIn(tt.waitIn, handler) {
					results <- handlerResult{err: errors.New("no goroutine waits in " + tt.waitIn)}
					<-waited
					return
				}
				if err := tt.setDeadline(rc, time.Now()); err != nil {
					results <- handlerResult{err: err}
					<-waited
					return
				}
				// A wait the deadline does not end, the connection's end
				// does, once the test gave up.
				results <- handlerResult{err: <-waited}
			}), nil)
			c := dialRaw(t, ts, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
			c.grant = false
			c.post(1, "/wait")
			if r := awaitResult(t, results); !errors.Is(r.err, os.ErrDeadlineExceeded) {
				t.Errorf("the %s returned %v, want an error wrapping os.ErrDeadlineExceeded", tt.name, r.err)
			}
		})
	}
}

// awaitWaitingIn polls the goroutines' stacks until one that goroutine
// parent started waits on a sync.Cond in fn, for up to waitLimit, and
// reports whether one did. Other tests' goroutines may wait in fn too:
// only parent's child counts.
func awaitWaitingIn(fn, parent string) bool {
	deadline := time.Now().Add(waitLimit)
	buf := make([]byte, 1<<20)
	for time.Now().Before(deadline) {
		n := runtime.Stack(buf, true)
		for g := range strings.SplitSeq(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "sync.(*Cond).Wait") && strings.Contains(g, fn) && strings.Contains(g, " in goroutine "+parent+"\n") {
				return true
			}
		}
		time.Sleep(time.Millisecond) // polling
	}
	return false
}

// goroutineID is the calling goroutine's number, as stack traces give
// it.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf), "goroutine "), " ")
	return id
}
