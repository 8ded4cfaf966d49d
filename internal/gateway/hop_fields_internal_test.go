package gateway

import (
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The hop-by-hop fields go whether the head holds fewer fields than
// there are names (walked) or more (deleted by name), and nothing else
// goes with them.
func TestHopFieldsAreDroppedFromHeadsOfAnySize(t *testing.T) {
	t.Parallel()
	many := http.Header{"Connection": {"close"}, "Upgrade": {"h2c"}}
	kept := http.Header{}
	for _, k := range []string{"A", "B", "C", "D", "E", "F", "G", "H", "I", "J"} {
		many["X-"+k] = []string{k}
		kept["X-"+k] = []string{k}
	}
	tests := []struct {
		name  string
		names []string
		h     http.Header
		want  http.Header
	}{
		{"a small answer", hopHeaders,
			http.Header{"Keep-Alive": {"timeout=5"}, "Content-Length": {"3"}, "Trailer": {"X"}},
			http.Header{"Content-Length": {"3"}}},
		{"a small request", notForwarded,
			http.Header{"Expect": {"100-continue"}, "Forwarded": {"for=1.2.3.4"}, "Te": {"gzip"}, "Accept": {"*/*"}},
			http.Header{"Accept": {"*/*"}}},
		{"a head with more fields than names", hopHeaders, many, kept},
		{"a head with none of them", hopHeaders,
			http.Header{"Content-Type": {"text/plain"}}, http.Header{"Content-Type": {"text/plain"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dropFields(tt.h, tt.names)
			if diff := cmp.Diff(tt.want, tt.h); diff != "" {
				t.Errorf("left (-want +got):\n%s", diff)
			}
		})
	}
}
