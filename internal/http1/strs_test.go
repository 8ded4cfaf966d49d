package http1

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The strings of a parsed head keep their bytes whatever happens to the
// buffer the head was read into, and to the heads parsed after it: many
// of them, to fill several blocks, and a head too large to be cut.
func TestHeadStringsOutliveTheirBuffer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		heads int
		host  string
	}{
		{"one", 1, "a.example"},
		{"several blocks", 3 * blockSize / 40, "b.example"},
		{"too large to cut", 3, strings.Repeat("h", maxCut)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, 0, 4<<10)
			type parsed struct{ Target, Host string }
			var got, want []parsed
			for i := range tc.heads {
				buf = append(buf[:0], "GET /"...)
				buf = append(buf, byte('a'+i%26))
				buf = append(buf, " HTTP/1.1\r\nHost: "...)
				buf = append(buf, tc.host...)
				buf = append(buf, "\r\n\r\n"...)
				var r RequestHead
				if err := ParseRequestHead(buf, &r); err != nil {
					t.Fatalf("head %d: %v", i, err)
				}
				got = append(got, parsed{r.Target, r.Host})
				want = append(want, parsed{"/" + string(rune('a'+i%26)), tc.host})
				copy(buf, bytes.Repeat([]byte{'X'}, len(buf))) // the reader's next bytes
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("parsed heads changed (-want +got):\n%s", d)
			}
		})
	}
}

// Parsing a plain head allocates nothing once its block is warm: the
// strings are cut from a shared block, the header map and its values are
// the ResponseHead's.
func TestParsePlainHeadAllocs(t *testing.T) {
	head := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\n")
	var r ResponseHead
	r.ParsePlainHead(head)
	if n := testing.AllocsPerRun(1000, func() { r.ParsePlainHead(head) }); n >= 0.1 {
		t.Errorf("%.2f allocations per parse, want about 0", n)
	}
}
