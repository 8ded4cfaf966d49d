package upstream

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A response head one byte over the limit is refused however it comes:
// whole, or with its last byte after the limit's worth (which the reader
// had already taken when it looked for the head's end).
func TestHeadOneByteOverTheLimit(t *testing.T) {
	t.Parallel()
	const limit = 2048 // do's HeadLimit
	head := func(size int) string {
		h := "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Pad: "
		return h + strings.Repeat("a", size-len(h)-4) + "\r\n\r\n"
	}
	for _, tc := range []struct {
		name  string
		size  int // the head's length
		split int // bytes sent before the rest, once the gateway read them; 0: all at once
		want  error
	}{
		{"at the limit", limit, 0, nil},
		{"at the limit, its last byte late", limit, limit - 1, nil},
		{"over the limit", limit + 1, 0, ErrHeadTooLarge},
		{"over the limit, its last byte late", limit + 1, limit, ErrHeadTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := head(tc.size)
			a := newApp(t, func(c net.Conn, r *http.Request) {
				if tc.split > 0 {
					io.WriteString(c, h[:tc.split])
					testutil.AwaitPeerRead(c, 0, 5*time.Second)
					io.WriteString(c, h[tc.split:])
					return
				}
				io.WriteString(c, h)
			})
			p := NewPool(a.addr, time.Minute)
			defer p.Close()
			if _, _, err := do(t, p, "GET", "/", nil); !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Errorf("a head of %d bytes: %v, want %v", len(h), err, tc.want)
			}
		})
	}
}
