package h2_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// headerUser is what a proxy finds on the stream's writer to hand over
// the map it parsed its upstream's answer into.
type headerUser interface{ UseHeader(http.Header) }

// A header map handed over with UseHeader is sent as the head, without
// the fields HTTP/2 cannot carry, and is its owner's again once the head
// is written: the owner reusing it after the handler returns changes
// nothing of the answer (and races nothing, under -race), and trailers
// set after the head still reach the client.
func TestAnAdoptedHeaderMapIsSentAndLetGo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		head        http.Header
		afterHead   func(w http.ResponseWriter)
		wantHead    http.Header
		wantTrailer http.Header
	}{
		{
			name:     "a plain answer",
			head:     http.Header{"X-App": {"1"}, "Connection": {"close"}, "Keep-Alive": {"timeout=5"}, "Content-Length": {"3"}},
			wantHead: http.Header{"X-App": {"1"}, "Content-Length": {"3"}},
		},
		{
			name: "a trailer set with the prefix after the head",
			head: http.Header{"X-App": {"1"}},
			afterHead: func(w http.ResponseWriter) {
				w.Header().Set(http.TrailerPrefix+"X-Sum", "3")
			},
			wantHead:    http.Header{"X-App": {"1"}, "Content-Length": {"3"}},
			wantTrailer: http.Header{"X-Sum": {"3"}},
		},
		{
			// Set before the head, as net/http's server also takes it.
			name:        "a trailer under the prefix in the adopted map",
			head:        http.Header{"X-App": {"1"}, http.TrailerPrefix + "X-Sum": {"3"}},
			wantHead:    http.Header{"X-App": {"1"}, "Content-Length": {"3"}},
			wantTrailer: http.Header{"X-Sum": {"3"}},
		},
		{
			name: "a trailer the adopted map announced",
			head: http.Header{"X-App": {"1"}, "Trailer": {"X-Sum"}},
			afterHead: func(w http.ResponseWriter) {
				w.Header().Set("X-Sum", "3")
			},
			// Go's client takes the announcement out of the head.
			wantHead:    http.Header{"X-App": {"1"}, "Content-Length": {"3"}},
			wantTrailer: http.Header{"X-Sum": {"3"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reused := make(chan struct{})
			handler := func(w http.ResponseWriter, r *http.Request) {
				h := tt.head.Clone()
				w.(headerUser).UseHeader(h)
				w.WriteHeader(http.StatusOK)
				io.WriteString(w, "1+2")
				if tt.afterHead != nil {
					tt.afterHead(w)
				}
				// The owner takes its map back as soon as the handler
				// returns, while the stream's end is still being sent.
				go func() {
					defer close(reused)
					clear(h)
					h.Set("X-App", "someone else's")
				}()
			}
			ts := startServer(t, &h2.Server{}, http.HandlerFunc(handler), nil)
			resp, err := h2cClient(t, 0).Get("http://" + ts.addr + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading the body: %v", err)
			}
			<-reused
			if string(body) != "1+2" {
				t.Errorf("body %q, want %q", body, "1+2")
			}
			got := resp.Header.Clone()
			got.Del("Date")
			if diff := cmp.Diff(tt.wantHead, got); diff != "" {
				t.Errorf("head (-want +got):\n%s", diff)
			}
			if len(resp.Trailer) == 0 {
				resp.Trailer = nil
			}
			if diff := cmp.Diff(tt.wantTrailer, resp.Trailer); diff != "" {
				t.Errorf("trailers (-want +got):\n%s", diff)
			}
		})
	}
}
