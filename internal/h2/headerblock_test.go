package h2

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// FuzzHeaderBlockMatchesXNet reads the same frames with x/net's Framer
// decoding header blocks itself (ReadMetaHeaders, as net/http's server
// does) and with blockDecoder, and checks they agree frame by frame: the
// same fields, truncation and ends, or the same connection or stream
// error, with HPACK's dynamic table carried from one block to the next.
func FuzzHeaderBlockMatchesXNet(f *testing.F) {
	for _, seed := range headerBlockSeeds(f) {
		f.Add(uint16(4096), seed)
		f.Add(uint16(60), seed)
	}
	f.Fuzz(func(t *testing.T, limit uint16, in []byte) {
		max := uint32(limit) + 1
		theirs := http2.NewFramer(io.Discard, bytes.NewReader(in))
		theirs.MaxHeaderListSize = max
		theirs.ReadMetaHeaders = hpack.NewDecoder(initialTableSize, nil)
		ours := http2.NewFramer(io.Discard, bytes.NewReader(in))
		ours.MaxHeaderListSize = max
		d := newBlockDecoder(max)
		for i := 0; i < 16; i++ {
			tf, terr := theirs.ReadFrame()
			of, oerr := ours.ReadFrame()
			var ob *headerBlock
			if hf, ok := of.(*http2.HeadersFrame); ok && oerr == nil {
				ob, oerr = d.read(ours, hf)
			}
			if tk, ok := errorKind(terr), errorKind(oerr); tk != ok {
				t.Fatalf("frame %d: x/net: %s (%v); ours: %s (%v)", i, tk, terr, ok, oerr)
			}
			if terr != nil {
				var se http2.StreamError
				if errors.As(terr, &se) {
					continue // the block was read; the connection goes on
				}
				return
			}
			mh, isMeta := tf.(*http2.MetaHeadersFrame)
			if isMeta != (ob != nil) {
				t.Fatalf("frame %d: x/net read %T, ours %T", i, tf, of)
			}
			if !isMeta {
				continue
			}
			want := blockView{mh.StreamID, mh.StreamEnded(), mh.HasPriority() && mh.Priority.StreamDep == mh.StreamID, mh.Fields, mh.Truncated}
			got := blockView{ob.streamID, ob.streamEnded, ob.dependsOnItself, ob.fields, ob.truncated}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Fatalf("frame %d: the blocks differ (-x/net +ours):\n%s", i, diff)
			}
			d.done() // as the connection is with each block
		}
	})
}

// blockView is what both readings of a header block must agree on.
type blockView struct {
	ID              uint32
	Ended           bool
	DependsOnItself bool
	Fields          []hpack.HeaderField
	Truncated       bool
}

// errorKind names an error by what the connection does with it.
func errorKind(err error) string {
	var ce http2.ConnectionError
	var se http2.StreamError
	switch {
	case err == nil:
		return "none"
	case errors.As(err, &ce):
		return fmt.Sprintf("connection error %v", http2.ErrCode(ce))
	case errors.As(err, &se):
		return fmt.Sprintf("stream error %v", se.Code)
	}
	return "read error"
}

// headerBlockSeeds are frame sequences around the checks: plain
// requests sharing HPACK's table, a block split over CONTINUATIONs,
// fields invalid in each way, trailer names, lists past the limit, and
// HPACK that does not decode.
func headerBlockSeeds(f *testing.F) [][]byte {
	f.Helper()
	get := []string{":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/"}
	blocks := []struct {
		fields []string
		split  int // bytes in the HEADERS frame, the rest in CONTINUATIONs
		end    bool
	}{
		{get, 0, true},
		{append(get, "user-agent", "test", "accept", "*/*"), 0, true},
		{append(get, "cookie", "a=b", "cookie", "c=d"), 5, true},
		{append(get, "x-big", strings.Repeat("v", 200)), 0, true},
		{append(get, "Upper", "x"), 0, true},
		{append(get, "x-bad", "a\x00b"), 0, true},
		{append([]string{"x-first", "1"}, get...), 0, true},
		{append(get, ":method", "POST"), 0, true},
		{append(get, ":status", "200"), 0, true},
		{append(get, ":unknown", "x"), 0, true},
		{append(get, "trailer", "a, b, c"), 0, false},
		{[]string{"x-trailer", "1"}, 0, true},
	}
	var seq bytes.Buffer
	fr := http2.NewFramer(&seq, nil)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	var seeds [][]byte
	for i, b := range blocks {
		var one bytes.Buffer
		ofr := http2.NewFramer(&one, nil)
		block.Reset()
		for j := 0; j+1 < len(b.fields); j += 2 {
			enc.WriteField(hpack.HeaderField{Name: b.fields[j], Value: b.fields[j+1]})
		}
		frag := block.Bytes()
		id := uint32(2*i + 1)
		for _, w := range []*http2.Framer{fr, ofr} {
			writeBlock(f, w, id, frag, b.split, b.end)
		}
		seeds = append(seeds, one.Bytes())
	}
	// All in sequence, on one table; HPACK that does not decode; a
	// CONTINUATION without its HEADERS.
	seeds = append(seeds, seq.Bytes())
	var bad bytes.Buffer
	bfr := http2.NewFramer(&bad, nil)
	writeBlock(f, bfr, 1, []byte{0xff, 0xff, 0xff, 0xff}, 0, true)
	seeds = append(seeds, bad.Bytes())
	var stray bytes.Buffer
	sfr := http2.NewFramer(&stray, nil)
	sfr.WriteContinuation(1, true, []byte{0x82})
	seeds = append(seeds, stray.Bytes())
	return seeds
}

// writeBlock writes frag as a HEADERS frame of split bytes (all when 0)
// and CONTINUATIONs of the rest, three bytes each.
func writeBlock(f testing.TB, w *http2.Framer, id uint32, frag []byte, split int, end bool) {
	f.Helper()
	if split == 0 || split > len(frag) {
		split = len(frag)
	}
	err := w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag[:split], EndStream: end, EndHeaders: split == len(frag)})
	for rest := frag[split:]; err == nil && len(rest) > 0; {
		n := min(3, len(rest))
		err = w.WriteContinuation(id, n == len(rest), rest[:n])
		rest = rest[n:]
	}
	if err != nil {
		f.Fatal(err)
	}
}

// A connection waiting for its next request keeps none of the last
// one's values (cookies, credentials, up to the limit on a head): the
// decoder's storage, reused from block to block, is cleared when a block
// is done with, after a stream error, and at heads of every length.
func TestHeaderBlockKeepsNoValues(t *testing.T) {
	const max = 64<<10 + 320
	var wire bytes.Buffer
	w := http2.NewFramer(&wire, nil)
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	blocks := 0
	for k := range 12 {
		block.Reset()
		for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "x"}, {":path", "/"}} {
			enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		// Fewer fields each time, each block ending in a large one,
		// which lands in a slot of its own; every third block invalid.
		for range 40 - 3*k {
			enc.WriteField(hpack.HeaderField{Name: "a", Value: "b"})
		}
		if k%3 == 2 {
			enc.WriteField(hpack.HeaderField{Name: "Upper", Value: "x"})
		}
		enc.WriteField(hpack.HeaderField{Name: "cookie", Value: strings.Repeat("s", 1000)})
		writeBlock(t, w, uint32(2*k+1), block.Bytes(), 0, true)
		blocks++
	}
	r := http2.NewFramer(io.Discard, bytes.NewReader(wire.Bytes()))
	r.MaxHeaderListSize = max
	d := newBlockDecoder(max)
	for i := range blocks {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.read(r, f.(*http2.HeadersFrame)); err == nil {
			d.done()
		} else if i%3 != 2 {
			t.Fatalf("block %d: %v", i, err)
		}
		for j, f := range d.b.fields[:cap(d.b.fields)] {
			if f != (hpack.HeaderField{}) {
				t.Fatalf("after block %d, slot %d still holds %q", i, j, f.Name)
			}
		}
	}
}
