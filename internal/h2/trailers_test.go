package h2_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// Trailers a handler sets after its body reach the client, whether
// announced in the Trailer field or named with http.TrailerPrefix.
func TestTrailersReachTheClient(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    http.Header
	}{
		{
			name: "announced",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Sum")
				io.WriteString(w, "1+2")
				w.Header().Set("X-Sum", "3")
			},
			want: http.Header{"X-Sum": {"3"}},
		},
		{
			name: "announced after a flush",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Sum")
				io.WriteString(w, "1+2")
				w.(http.Flusher).Flush()
				w.Header().Set("X-Sum", "3")
			},
			want: http.Header{"X-Sum": {"3"}},
		},
		{
			name: "with the trailer prefix",
			handler: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "1+2")
				w.Header().Set(http.TrailerPrefix+"X-Sum", "3")
			},
			want: http.Header{"X-Sum": {"3"}},
		},
		{
			// As net/http's server: the prefixed value is the
			// trailer's, whatever the head held under its name.
			name: "announced, in the head too, and with the prefix",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Sum")
				w.Header().Set("X-Sum", "head")
				io.WriteString(w, "1+2")
				w.Header().Set(http.TrailerPrefix+"X-Sum", "3")
			},
			want: http.Header{"X-Sum": {"3"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, &h2.Server{}, tt.handler, nil)
			resp, err := h2cClient(t, 0).Get("http://" + ts.addr + "/sum")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading the body: %v", err)
			}
			if string(body) != "1+2" {
				t.Errorf("body %q, want %q", body, "1+2")
			}
			if diff := cmp.Diff(tt.want, resp.Trailer); diff != "" {
				t.Errorf("trailers (-want +got):\n%s", diff)
			}
		})
	}
}
