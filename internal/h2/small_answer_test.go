package h2_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// A small answer leaves in one write to the connection, HEADERS and
// DATA together (one TLS record over TLS), and carries its length when
// the handler wrote all of it before returning and said none.
func TestSmallAnswerLeavesInOneWrite(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("a", 100)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		// wantLength are the content-length fields the head carries.
		wantLength []string
		// oneWrite: the answer's frames all leave in one Write.
		oneWrite bool
	}{
		{
			name:       "written whole before returning",
			handler:    func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) },
			wantLength: []string{"100"},
			oneWrite:   true,
		},
		{
			name: "with its own length",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "100")
				w.Write([]byte(body))
			},
			wantLength: []string{"100"},
			oneWrite:   true,
		},
		{
			name: "flushed before returning",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(body))
				w.(http.Flusher).Flush()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := make(chan *recordingConn, 1)
			ts := startServer(t, &h2.Server{}, tt.handler, func(nc net.Conn) net.Conn {
				rc := &recordingConn{Conn: nc}
				rec <- rc
				return rc
			})
			c := dialRaw(t, ts)
			c.get(1, "/small")
			a := c.readAnswer(1)
			if diff := cmp.Diff([]string{"200"}, a.statuses()); diff != "" {
				t.Errorf("statuses (-want +got):\n%s", diff)
			}
			if string(a.body) != body {
				t.Errorf("body %q, want %q", a.body, body)
			}
			if diff := cmp.Diff(tt.wantLength, a.values(0, "content-length")); diff != "" {
				t.Errorf("content-length (-want +got):\n%s", diff)
			}
			if !tt.oneWrite {
				return
			}
			var writes []int
			for _, f := range (<-rec).written() {
				if f.StreamID != 1 {
					continue
				}
				if f.first != f.last {
					t.Errorf("%v frame split over writes %d to %d", f.Type, f.first, f.last)
				}
				if len(writes) == 0 || writes[len(writes)-1] != f.first {
					writes = append(writes, f.first)
				}
				if f.Type == http2.FrameData && f.Flags.Has(http2.FlagDataEndStream) {
					break
				}
			}
			if len(writes) != 1 {
				t.Errorf("the answer's frames left in %d writes (%v), want 1", len(writes), writes)
			}
		})
	}
}
