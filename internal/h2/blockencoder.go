package h2

import (
	"strconv"
	"sync"

	"golang.org/x/net/http2/hpack"
)

// blockEncoder encodes the connection's header blocks with HPACK's
// static table and literals alone, as nginx and HAProxy do: no field
// enters the client's dynamic table, whose size the first block sets to
// 0 (RFC 7541 §6.3), so none of the SETTINGS_HEADER_TABLE_SIZE the
// client may send later is below it and calls for an update. It keeps no
// table, so an answer's fields cost no search of one (x/net's encoder
// looks each field up in up to four maps, two of them keyed by name and
// value), and an idle connection holds none. What it gives up is
// indexing what repeats from answer to answer: a field up to the table's
// 4 KiB went out once and then as an index of a byte or two, where it
// now goes out whole every time (a few tens of bytes for the common
// fields, the whole of a long Content-Security-Policy).
type blockEncoder struct {
	// buf holds the block from reset to done, a buffer of blockBufs,
	// which bp points to: a connection keeps none between answers.
	buf []byte
	bp  *[]byte
	// sized: the table size update was sent, in an earlier block.
	sized bool
}

// blockBufs are the buffers header blocks are encoded into; one that a
// large head grew past maxPooledBlock is left to the collector.
var blockBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledBlock = 64 << 10

// reset starts a new block.
func (e *blockEncoder) reset() {
	if e.bp == nil {
		e.bp = blockBufs.Get().(*[]byte)
	}
	e.buf = (*e.bp)[:0]
	if !e.sized {
		e.sized = true
		e.buf = append(e.buf, 0x20) // dynamic table size update: 0
	}
}

// block is the block encoded since reset.
func (e *blockEncoder) block() []byte { return e.buf }

// done is called once the block was written: its buffer goes back.
func (e *blockEncoder) done() {
	if e.bp == nil {
		return
	}
	if cap(e.buf) <= maxPooledBlock {
		*e.bp = e.buf[:0]
		blockBufs.Put(e.bp)
	}
	e.buf, e.bp = nil, nil
}

// status encodes :status.
func (e *blockEncoder) status(code int) {
	if i := staticStatus(code); i != 0 {
		e.buf = append(e.buf, 0x80|i) // indexed (RFC 7541 §6.1)
		return
	}
	e.field(hpack.HeaderField{Name: ":status", Value: statusValue(code)})
}

// field encodes f as a literal without indexing (RFC 7541 §6.2.2), or
// never indexed (§6.2.3) if f is sensitive, its name the static table's
// where that has it.
func (e *blockEncoder) field(f hpack.HeaderField) {
	flags := byte(0x00)
	if f.Sensitive {
		flags = 0x10
	}
	if i := staticName(f.Name); i != 0 {
		e.buf = appendInt(e.buf, flags, 4, uint64(i))
	} else {
		e.buf = append(e.buf, flags)
		e.buf = appendString(e.buf, f.Name)
	}
	e.buf = appendString(e.buf, f.Value)
}

// raw appends a field encoded before.
func (e *blockEncoder) raw(field []byte) { e.buf = append(e.buf, field...) }

// appendString appends s as an HPACK string literal (RFC 7541 §5.2),
// Huffman-coded when that is shorter.
func appendString(dst []byte, s string) []byte {
	if n := hpack.HuffmanEncodeLength(s); n < uint64(len(s)) {
		dst = appendInt(dst, 0x80, 7, n)
		return hpack.AppendHuffmanString(dst, s)
	}
	dst = appendInt(dst, 0, 7, uint64(len(s)))
	return append(dst, s...)
}

// appendInt appends v as an HPACK integer with an n-bit prefix (RFC 7541
// §5.1), the first byte's other bits set to flags.
func appendInt(dst []byte, flags byte, n uint, v uint64) []byte {
	max := uint64(1)<<n - 1
	if v < max {
		return append(dst, flags|byte(v))
	}
	dst = append(dst, flags|byte(max))
	for v -= max; v >= 128; v >>= 7 {
		dst = append(dst, byte(v&0x7f|0x80))
	}
	return append(dst, byte(v))
}

// staticStatus is :status code's index in HPACK's static table, 0 if it
// has none.
func staticStatus(code int) byte {
	switch code {
	case 200:
		return 8
	case 204:
		return 9
	case 206:
		return 10
	case 304:
		return 11
	case 400:
		return 12
	case 404:
		return 13
	case 500:
		return 14
	}
	return 0
}

// statusValue is :status's value for a code the static table lacks,
// the common ones without formatting.
func statusValue(code int) string {
	switch code {
	case 301:
		return "301"
	case 302:
		return "302"
	case 502:
		return "502"
	case 503:
		return "503"
	}
	return strconv.Itoa(code)
}

// staticName is the index of name's first entry in HPACK's static table
// (RFC 7541 Appendix A), 0 if it has none.
func staticName(name string) uint8 {
	switch name {
	case ":authority":
		return 1
	case ":method":
		return 2
	case ":path":
		return 4
	case ":scheme":
		return 6
	case ":status":
		return 8
	case "accept-charset":
		return 15
	case "accept-encoding":
		return 16
	case "accept-language":
		return 17
	case "accept-ranges":
		return 18
	case "accept":
		return 19
	case "access-control-allow-origin":
		return 20
	case "age":
		return 21
	case "allow":
		return 22
	case "authorization":
		return 23
	case "cache-control":
		return 24
	case "content-disposition":
		return 25
	case "content-encoding":
		return 26
	case "content-language":
		return 27
	case "content-length":
		return 28
	case "content-location":
		return 29
	case "content-range":
		return 30
	case "content-type":
		return 31
	case "cookie":
		return 32
	case "date":
		return 33
	case "etag":
		return 34
	case "expect":
		return 35
	case "expires":
		return 36
	case "from":
		return 37
	case "host":
		return 38
	case "if-match":
		return 39
	case "if-modified-since":
		return 40
	case "if-none-match":
		return 41
	case "if-range":
		return 42
	case "if-unmodified-since":
		return 43
	case "last-modified":
		return 44
	case "link":
		return 45
	case "location":
		return 46
	case "max-forwards":
		return 47
	case "proxy-authenticate":
		return 48
	case "proxy-authorization":
		return 49
	case "range":
		return 50
	case "referer":
		return 51
	case "refresh":
		return 52
	case "retry-after":
		return 53
	case "server":
		return 54
	case "set-cookie":
		return 55
	case "strict-transport-security":
		return 56
	case "transfer-encoding":
		return 57
	case "user-agent":
		return 58
	case "vary":
		return 59
	case "via":
		return 60
	case "www-authenticate":
		return 61
	}
	return 0
}
