package h2_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// An answer's header block uses HPACK's static table and literals only:
// the first sets the client's dynamic table to 0 bytes, and every block
// decodes alone, with a decoder that saw none before it, whatever table
// size the client asks for. Cookies go as never indexed.
func TestAnswerBlocksUseNoDynamicTable(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := n.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Request-Id", fmt.Sprintf("req-%d", n))
		w.Header().Set("Set-Cookie", fmt.Sprintf("s=%d", n))
		w.Header().Set("X-Powered-By", "tests")
		w.Header().Set("Content-Length", "2")
		w.Write([]byte("ok"))
	}), nil)
	for _, tc := range []struct {
		name     string
		settings []http2.Setting
	}{
		{"the default table", nil},
		{"a table of 0 bytes", []http2.Setting{{ID: http2.SettingHeaderTableSize, Val: 0}}},
		{"a larger table", []http2.Setting{{ID: http2.SettingHeaderTableSize, Val: 1 << 16}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, ts, tc.settings...)
			c.Framer.ReadMetaHeaders = nil // the blocks as sent
			for i, id := range []uint32{1, 3, 5} {
				c.get(id, "/")
				var block []byte
				for block == nil {
					if h, ok := c.readFrame().(*http2.HeadersFrame); ok && h.StreamID == id {
						if !h.HeadersEnded() {
							t.Fatalf("answer %d: the head takes more than a frame", i)
						}
						block = append([]byte(nil), h.HeaderBlockFragment()...)
					}
				}
				if first := block[0] == 0x20; first != (i == 0) {
					t.Errorf("answer %d: block begins % x; want the table size update in the first block only", i, block[:1])
				}
				fields, err := hpack.NewDecoder(4096, nil).DecodeFull(block)
				if err != nil {
					t.Fatalf("answer %d: decoded alone: %v", i, err)
				}
				never := map[string]bool{}
				for _, f := range fields {
					never[f.Name] = f.Sensitive
				}
				want := map[string]bool{
					":status": false, "content-type": false, "x-powered-by": false, "date": false,
					"x-request-id": false, "set-cookie": true, "content-length": false,
				}
				if d := cmp.Diff(want, never); d != "" {
					t.Errorf("answer %d: never-indexed by field (-want +got):\n%s", i, d)
				}
			}
		})
	}
}

// Whatever kind of block a connection sends first (an interim head, a
// 100 Continue, a refusal of a head too large, a head long enough for
// CONTINUATION frames, an answer with trailers), it carries the table
// size update, and no block after it does: a client that asked for a
// table of 0 bytes decodes them all, in the order they came.
func TestTheFirstBlockOfEveryKindSetsTheTableSize(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("v", 40000) // two CONTINUATIONs at 16 KiB frames
	ts := startServer(t, &h2.Server{MaxHeaderListSize: 4096}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/early":
			w.Header().Set("Link", "</a.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
		case "/long":
			w.Header().Set("X-Long", long)
		case "/upload":
			io.Copy(io.Discard, r.Body)
		case "/trailers":
			w.Header().Set("Trailer", "X-T")
			w.Write([]byte("x"))
			w.Header().Set("X-T", "done")
			return
		}
		w.Write([]byte("ok"))
	}), nil)
	for _, tc := range []struct {
		name   string
		blocks int // the first stream's
		send   func(c *rawClient)
	}{
		{"an interim head", 2, func(c *rawClient) { c.get(1, "/early") }},
		{"a head in CONTINUATIONs", 1, func(c *rawClient) { c.get(1, "/long") }},
		{"100 Continue", 1, func(c *rawClient) { c.post(1, "/upload", "expect", "100-continue") }},
		{"trailers", 2, func(c *rawClient) { c.get(1, "/trailers") }},
		{"a refused head", 1, func(c *rawClient) {
			c.get(1, "/", "x-huge", strings.Repeat("h", 3000), "x-huge2", strings.Repeat("h", 3000))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialRaw(t, ts, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
			c.Framer.ReadMetaHeaders = nil // the blocks as sent
			tc.send(c)
			blocks := c.readBlocks(tc.blocks)
			if tc.name == "100 Continue" {
				if err := c.Framer.WriteData(1, true, []byte("body")); err != nil {
					t.Fatal(err)
				}
				blocks = append(blocks, c.readBlocks(1)...)
			}
			c.get(3, "/long")
			blocks = append(blocks, c.readBlocks(1)...)
			dec := hpack.NewDecoder(0, nil)
			for i, b := range blocks {
				if (b[0] == 0x20) != (i == 0) {
					t.Errorf("block %d begins % x; want the table size update in the first only", i, b[:min(4, len(b))])
				}
				if _, err := dec.DecodeFull(b); err != nil {
					t.Fatalf("block %d: %v", i, err)
				}
			}
		})
	}
}

// readBlocks reads frames until n header blocks came (HEADERS and their
// CONTINUATIONs, joined), and returns them in the order they came.
func (c *rawClient) readBlocks(n int) [][]byte {
	c.t.Helper()
	var blocks [][]byte
	var cur []byte
	for len(blocks) < n {
		var ended bool
		switch f := c.readFrame().(type) {
		case *http2.HeadersFrame:
			cur, ended = append([]byte(nil), f.HeaderBlockFragment()...), f.HeadersEnded()
		case *http2.ContinuationFrame:
			cur, ended = append(cur, f.HeaderBlockFragment()...), f.HeadersEnded()
		}
		if ended {
			blocks = append(blocks, cur)
		}
	}
	return blocks
}
