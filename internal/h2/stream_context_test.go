package h2_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/h2"
)

type servingKey struct{}

// A stream's context carries the serving context's values and deadline,
// and is cancelled however its connection ends while the handler runs:
// the client closes it, the server's side is closed, the serving context
// is cancelled; whether that context can be cancelled or not (the
// connection then cancels its streams itself).
func TestStreamContextEndsWithItsConnection(t *testing.T) {
	t.Parallel()
	carried := context.WithValue(context.Background(), servingKey{}, "carried")
	uncancellable := func() (context.Context, context.CancelFunc) { return carried, func() {} }
	cancellable := func() (context.Context, context.CancelFunc) { return context.WithCancel(carried) }
	withDeadline := func() (context.Context, context.CancelFunc) {
		return context.WithDeadline(carried, time.Now().Add(time.Hour))
	}
	for _, tc := range []struct {
		name    string
		serving func() (context.Context, context.CancelFunc)
		end     func(client net.Conn, served net.Conn, cancel context.CancelFunc)
	}{
		{"the client closes", uncancellable, func(client, _ net.Conn, _ context.CancelFunc) { client.Close() }},
		{"the server's side closes", uncancellable, func(_, served net.Conn, _ context.CancelFunc) { served.Close() }},
		{"the client closes, a cancellable context", cancellable, func(client, _ net.Conn, _ context.CancelFunc) { client.Close() }},
		{"the serving context is cancelled", cancellable, func(_, _ net.Conn, cancel context.CancelFunc) { cancel() }},
		{"the serving context, with a deadline, is cancelled", withDeadline, func(_, _ net.Conn, cancel context.CancelFunc) { cancel() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			ctx, cancel := tc.serving()
			defer cancel()
			_, wantDeadline := ctx.Deadline()
			started, ended := make(chan any, 1), make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, ok := r.Context().Deadline(); ok != wantDeadline {
					t.Errorf("the handler's context has a deadline: %v, want %v", ok, wantDeadline)
				}
				started <- r.Context().Value(servingKey{})
				select {
				case <-r.Context().Done():
					close(ended)
				case <-time.After(waitLimit):
				}
			})
			accepted, served := make(chan net.Conn, 1), make(chan struct{})
			go func() {
				defer close(served)
				nc, err := ln.Accept()
				if err != nil {
					return
				}
				defer nc.Close()
				accepted <- nc
				(&h2.Server{}).ServeConn(ctx, nc, h)
			}()
			c := getOnNewConn(t, ln.Addr().String())
			var nc net.Conn
			select {
			case nc = <-accepted:
			case <-time.After(waitLimit):
				t.Fatal("no connection accepted")
			}
			select {
			case v := <-started:
				if v != "carried" {
					t.Errorf("the handler's context holds %v, want the serving context's value", v)
				}
			case <-time.After(waitLimit):
				t.Fatal("the handler did not start")
			}
			tc.end(c.Conn, nc, cancel)
			await(t, ended, "the stream's context to be cancelled")
			nc.Close()
			await(t, served, "ServeConn to return")
		})
	}
}
