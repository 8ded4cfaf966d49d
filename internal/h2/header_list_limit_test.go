package h2_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// A header list past MaxHeaderListSize is answered 431: by the server
// itself, unseen by the handler, or, with HandleRefused, by the handler,
// which is told so (Refused) and gets the method, authority and path
// that came before the limit, no fields and no body.
func TestHeaderListPastTheLimit(t *testing.T) {
	t.Parallel()
	type seen struct {
		Refused            int
		Method, Host, Path string
		Fields             int
	}
	tests := []struct {
		name   string
		handle bool
		want   []seen
	}{
		{"answered by the server", false, nil},
		{"handed to the handler", true, []seen{{Refused: 431, Method: "GET", Host: "example.test", Path: "/big"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan seen, 2)
			ts := startServer(t, &h2.Server{MaxHeaderListSize: 4 << 10, HandleRefused: tt.handle}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/next" {
					return
				}
				status := w.(interface{ Refused() int }).Refused()
				got <- seen{status, r.Method, r.Host, r.URL.Path, len(r.Header)}
				if status != 0 {
					w.WriteHeader(status)
				}
			}), nil)
			c := dialRaw(t, ts)
			var big []string
			for i := range 16 {
				big = append(big, fmt.Sprintf("x-big-%d", i), strings.Repeat("a", 512))
			}
			c.get(1, "/big", big...)
			if a := c.readAnswer(1); !cmp.Equal(a.statuses(), []string{"431"}) {
				t.Errorf("8 KiB of fields against a 4 KiB limit: statuses %v, want [431]", a.statuses())
			}
			c.get(3, "/next")
			if a := c.readAnswer(3); !cmp.Equal(a.statuses(), []string{"200"}) {
				t.Errorf("the next request: statuses %v, want [200]", a.statuses())
			}
			// Stream 1's handler, if it ran, reported before its answer.
			var handled []seen
			for len(got) > 0 {
				handled = append(handled, <-got)
			}
			if diff := cmp.Diff(tt.want, handled); diff != "" {
				t.Errorf("the handler saw (-want +got):\n%s", diff)
			}
		})
	}
}
