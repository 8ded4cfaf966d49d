package h2_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// A client that expects 100-continue hears it before it sends the body,
// and only from a handler that reads the body.
func TestContinueOnlyWhenTheBodyIsRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		// wantStatuses are the statuses of the head blocks the client
		// reads before it sends the body, if it gets to.
		wantStatuses []string
		wantBody     string
	}{
		{
			name: "read",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.Copy(w, r.Body)
			},
			wantStatuses: []string{"100", "200"},
			wantBody:     "payload",
		},
		{
			name: "not read",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusForbidden)
			},
			wantStatuses: []string{"403"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, &h2.Server{}, tt.handler, nil)
			c := dialRaw(t, ts)
			c.post(1, "/upload", "expect", "100-continue")
			// The first head the client gets: a 100 lets it send the
			// body; anything else is the answer.
			var a answer
			for len(a.blocks) == 0 {
				switch f := c.readFrame().(type) {
				case *http2.MetaHeadersFrame:
					if f.StreamID == 1 {
						a.blocks = append(a.blocks, f.Fields)
					}
				case *http2.RSTStreamFrame:
					if f.StreamID == 1 {
						t.Fatalf("stream reset with %v before any head", f.ErrCode)
					}
				}
			}
			if s := a.statuses(); len(s) == 1 && s[0] == "100" {
				if err := c.Framer.WriteData(1, true, []byte("payload")); err != nil {
					t.Fatal(err)
				}
				rest := c.readAnswer(1)
				a.blocks = append(a.blocks, rest.blocks...)
				a.body = rest.body
			}
			if diff := cmp.Diff(tt.wantStatuses, a.statuses()); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			if string(a.body) != tt.wantBody {
				t.Errorf("body %q, want %q", a.body, tt.wantBody)
			}
		})
	}
}
