package h2

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/net/http2/hpack"
)

// blockEncoderNames are the names the encoding fuzz test draws on: some
// in HPACK's static table, some not, a pseudo-field.
var blockEncoderNames = []string{
	"x-request-id", "content-length", "set-cookie", "etag", "www-authenticate", "traceparent",
	"content-type", "date", "server", "cache-control", "x-custom", "a", ":status",
}

// FuzzBlockEncoderRoundTrips encodes answers' header blocks, one after
// another as a connection sends them, and decodes them with x/net's
// decoder, as a client of its own: each decodes to the fields encoded,
// sensitive ones as never indexed.
func FuzzBlockEncoderRoundTrips(f *testing.F) {
	var every []byte // each status and name once
	for i := range 11 {
		every = append(every, 2, byte(i))
	}
	for i := range blockEncoderNames {
		every = append(every, 3, byte(i), 1, 1, 0)
	}
	f.Add(append(every, 1))
	f.Add([]byte{2, 0, 3, 0, 0, 3, 1, 1, 3, 6, 2, 1, 2, 0, 3, 6, 2, 1})
	f.Add([]byte{3, 0, 4, 3, 0, 4, 1, 2, 7, 0, 0, 0, 3, 2, 9, 1, 2, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		var enc blockEncoder
		dec := hpack.NewDecoder(initialTableSize, nil)
		next := func() byte {
			if len(in) == 0 {
				return 0
			}
			b := in[0]
			in = in[1:]
			return b
		}
		var want []hpack.HeaderField
		enc.reset()
		for blocks := 0; len(in) > 0 && blocks < 32; {
			switch next() % 4 {
			case 0: // the client lowers its table's size: no update is due
				dec.SetAllowedMaxDynamicTableSize(uint32(next()))
			case 1: // the block ends
				blocks++
				got, err := dec.DecodeFull(enc.block())
				if err != nil {
					t.Fatalf("block %d (% x): %v", blocks, enc.block(), err)
				}
				if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
					t.Fatalf("block %d decodes otherwise (-encoded +decoded):\n%s", blocks, d)
				}
				want = want[:0]
				enc.done()
				enc.reset()
			case 2:
				code := []int{200, 204, 206, 304, 400, 404, 500, 502, 503, 100, 301}[int(next())%11]
				enc.status(code)
				want = append(want, hpack.HeaderField{Name: ":status", Value: strconv.Itoa(code)})
			case 3:
				name := blockEncoderNames[int(next())%len(blockEncoderNames)]
				if n := next(); n%5 == 4 {
					name = string(bytes.Repeat([]byte{'n', n}, int(n)%40))
				}
				value := strconv.Itoa(int(next()) % 7)
				if n := int(next()); n%3 == 0 {
					value = string(bytes.Repeat([]byte{'v', byte(n)}, n%200))
				}
				fld := hpack.HeaderField{Name: name, Value: value, Sensitive: next()%2 == 1}
				enc.field(fld)
				want = append(want, fld)
			}
		}
	})
}

// The first block a connection sends sets the client's dynamic table to
// 0 bytes, as its first byte; none after it says so again.
func TestFirstBlockSetsTheTableToZero(t *testing.T) {
	var enc blockEncoder
	for i, want := range []byte{0x20, 0x88, 0x88} {
		enc.reset()
		enc.status(200)
		if got := enc.block()[0]; got != want {
			t.Errorf("block %d begins % x, want %x", i, enc.block(), want)
		}
		enc.done()
	}
}

// staticName gives each name of HPACK's static table the index x/net's
// decoder reads it at, its first entry's.
func TestStaticNamesAreHPACKs(t *testing.T) {
	first := map[string]uint8{}
	dec := hpack.NewDecoder(initialTableSize, nil)
	for i := uint8(1); i <= 61; i++ {
		fs, err := dec.DecodeFull(appendString(appendInt(nil, 0, 4, uint64(i)), "v"))
		if err != nil || len(fs) != 1 {
			t.Fatalf("static entry %d: %v %v", i, fs, err)
		}
		if _, ok := first[fs[0].Name]; !ok {
			first[fs[0].Name] = i
		}
	}
	for name, i := range first {
		if got := staticName(name); got != i {
			t.Errorf("staticName(%q) = %d, want %d", name, got, i)
		}
	}
	for _, name := range []string{"x-request-id", "Content-Type", "", ":protocol"} {
		if got := staticName(name); got != 0 {
			t.Errorf("staticName(%q) = %d, want 0", name, got)
		}
	}
}

// appendInt writes HPACK's integers as RFC 7541 §5.1 and its appendix
// C.1 examples give them.
func TestAppendIntMatchesTheRFC(t *testing.T) {
	for _, tc := range []struct {
		n    uint
		v    uint64
		want []byte
	}{
		{5, 10, []byte{0x0a}},
		{5, 1337, []byte{0x1f, 0x9a, 0x0a}},
		{8, 42, []byte{0x2a}},
		{4, 15, []byte{0x0f, 0x00}},
		{4, 14, []byte{0x0e}},
		{7, 127, []byte{0x7f, 0x00}},
		{7, 255, []byte{0x7f, 0x80, 0x01}},
	} {
		t.Run(strconv.FormatUint(tc.v, 10), func(t *testing.T) {
			if got := appendInt(nil, 0, tc.n, tc.v); !bytes.Equal(got, tc.want) {
				t.Errorf("appendInt(%d-bit prefix, %d) = % x, want % x", tc.n, tc.v, got, tc.want)
			}
		})
	}
}

// BenchmarkAnswerHead encodes a small answer's head, as a proxied answer
// has it, with blockEncoder and with x/net's encoder.
func BenchmarkAnswerHead(b *testing.B) {
	fields := []hpack.HeaderField{
		{Name: "content-type", Value: "text/plain; charset=utf-8"},
		{Name: "x-request-id", Value: "0f3c2a9e1b7d4c58"},
		{Name: "date", Value: "Sat, 05 Dec 2026 03:30:00 GMT"},
		{Name: "content-length", Value: "100"},
	}
	b.Run("blockEncoder", func(b *testing.B) {
		var e blockEncoder
		for b.Loop() {
			e.reset()
			e.status(200)
			for _, f := range fields {
				e.field(f)
			}
		}
	})
	b.Run("x-net", func(b *testing.B) {
		var buf bytes.Buffer
		e := hpack.NewEncoder(&buf)
		for b.Loop() {
			buf.Reset()
			e.WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
			for _, f := range fields {
				e.WriteField(f)
			}
		}
	})
}

// Long names and values (the 7-bit length prefix's 1-, 2-, 3- and
// 4-byte forms), empty values, obs-text bytes, Huffman-friendly and
// Huffman-hostile strings decode as encoded with x/net's decoder.
func TestLongAndOddStringsRoundTrip(t *testing.T) {
	var vals []string
	for _, n := range []int{0, 1, 126, 127, 128, 254, 255, 16382, 16383, 16384, 16510, 16511, 70000, 2100000} {
		vals = append(vals, strings.Repeat("a", n), string(bytes.Repeat([]byte{0xff}, n)))
	}
	vals = append(vals, "\x80\x81caf\xc3\xa9\t x", "\t", " ")
	for _, v := range vals {
		for _, name := range []string{"x-a", "date", "set-cookie", strings.Repeat("n", 200), strings.Repeat("z", 20000)} {
			var enc blockEncoder
			enc.reset()
			enc.status(103)
			want := []hpack.HeaderField{{Name: ":status", Value: "103"}}
			f := hpack.HeaderField{Name: name, Value: v, Sensitive: name == "set-cookie"}
			enc.field(f)
			want = append(want, f)
			dec := hpack.NewDecoder(0, nil) // the client asked for no table
			got, err := dec.DecodeFull(enc.block())
			if err != nil {
				t.Fatalf("name %d bytes, value %d bytes: %v", len(name), len(v), err)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Fatalf("name %d bytes, value %d bytes: (-want +got)\n%s", len(name), len(v), d)
			}
		}
	}
}

// appendInt's one- and many-byte forms on each side of every prefix's
// boundary decode back, as RFC 7541 §5.1 reads them.
func TestAppendIntAtPrefixBoundaries(t *testing.T) {
	for _, n := range []uint{4, 5, 6, 7, 8} {
		for _, v := range []uint64{0, 1<<n - 2, 1<<n - 1, 1 << n, 1<<n - 1 + 127, 1<<n - 1 + 128, 1<<n - 1 + 16383, 1<<n - 1 + 16384, 1 << 28, 1<<32 - 1} {
			b := appendInt(nil, 0, n, v)
			max := uint64(1)<<n - 1
			got := uint64(b[0]) & max
			if got == max {
				m := uint(0)
				for _, c := range b[1:] {
					got += uint64(c&0x7f) << m
					m += 7
				}
				if b[len(b)-1]&0x80 != 0 {
					t.Fatalf("n=%d v=%d: unterminated % x", n, v, b)
				}
			} else if len(b) != 1 {
				t.Fatalf("n=%d v=%d: % x", n, v, b)
			}
			if got != v {
				t.Fatalf("n=%d v=%d: decodes to %d (% x)", n, v, got, b)
			}
		}
	}
}

// The server-wide Date field is shared by every connection: encoding
// blocks with it leaves it as made, and it decodes to this second's Date.
func TestTheSharedDateFieldIsNotWrittenInto(t *testing.T) {
	s := &Server{}
	d := s.date()
	keep := append([]byte(nil), d.field...)
	var e blockEncoder
	for range 100 {
		e.reset()
		e.raw(d.field)
		e.field(hpack.HeaderField{Name: "x", Value: "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"})
		e.done()
	}
	if !bytes.Equal(keep, d.field) {
		t.Fatal("the shared Date field was written into")
	}
	got, err := hpack.NewDecoder(4096, nil).DecodeFull(d.field)
	if err != nil || len(got) != 1 || got[0].Name != "date" || got[0].Value != d.val || got[0].Sensitive {
		t.Fatalf("Date field decodes to %v, %v", got, err)
	}
}

// An app's Date is kept encoded, server-wide, once it came twice in a
// row, and then found for every answer that carries it; Dates that
// differ from answer to answer (stored answers') are left to the caller
// to encode, at no cost of their own. The server's own Date and an app's
// other one, in turn, do not push each other out.
func TestAnAppsDateIsEncodedOnceAValue(t *testing.T) {
	s := &Server{}
	first, second := "Sat, 05 Dec 2026 04:30:00 GMT", "Sat, 05 Dec 2026 04:30:01 GMT"
	decodes := func(field []byte, want string) {
		t.Helper()
		got, err := hpack.NewDecoder(4096, nil).DecodeFull(field)
		if err != nil || len(got) != 1 || got[0] != (hpack.HeaderField{Name: "date", Value: want}) {
			t.Fatalf("the Date field decodes to %v, %v; want %q", got, err, want)
		}
	}
	if f := s.dateField(first); f != nil {
		t.Fatalf("a Date seen once was kept: % x", f)
	}
	a := s.dateField(first)
	decodes(a, first)
	if b := s.dateField(first); &b[0] != &a[0] {
		t.Error("the same Date was encoded again")
	}
	s.dateField(second)
	c := s.dateField(second)
	decodes(c, second)
	if d := s.dateField(second); &d[0] != &c[0] {
		t.Error("the next second's Date was encoded again")
	}
	own := s.date() // the server's own Date is of now, whatever apps sent
	decodes(own.field, time.Unix(own.sec, 0).UTC().Format(http.TimeFormat))
	for _, tc := range []struct {
		name string
		run  func(i int)
	}{
		{"an app's Date and the server's, in turn", func(int) {
			s.dateField(second)
			s.date()
		}},
		{"Dates that differ from answer to answer", func(i int) {
			s.dateField([]string{"Mon, 01 Jan 2024 00:00:00 GMT", "Tue, 02 Jan 2024 00:00:00 GMT"}[i%2])
		}},
	} {
		i := 0
		if n := testing.AllocsPerRun(100, func() { tc.run(i); i++ }); n != 0 {
			t.Errorf("%s: %v allocations, want 0", tc.name, n)
		}
	}
}
