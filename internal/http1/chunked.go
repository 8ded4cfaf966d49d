package http1

import (
	"bufio"
	"bytes"
	"io"
	"math"
	"net/http"
	"strings"
)

// The chunked body (RFC 9112 §7.1) is where a request's end is decided
// after its head, so it is read as strictly as the head: a body read here
// either ends where net/http ends it, with the same data, or is refused.
// Two leniencies net/http lacks cannot move the body's end: the white
// space RFC 9112 allows before a chunk extension's ';' (BWS), and a
// trailer section as long as the caller's limit (net/http's is its 4 KiB
// buffer).

// maxChunkLine bounds a chunk-size line with its extensions and CRLF:
// net/http refuses a longer one (it reads the line whole into its 4 KiB
// buffer).
const maxChunkLine = 4096

// Chunk overhead, as net/http counts it: each data chunk may bring
// chunkAllowance bytes of framing plus twice its data before the excess
// counts; a body whose excess passes maxExcess is refused. Without it a
// client could make the proxy read 4 KiB of extensions for every byte of
// data, without end.
const (
	chunkAllowance = 16
	maxExcess      = 16 << 10
)

// ChunkedReader reads a chunked message body (RFC 9112 §7.1) from a
// bufio.Reader: the data of its chunks, then its trailer section. It
// reads nothing past the body's end, so that a pipelined request stays
// in the bufio.Reader, and it refuses any framing that another parser
// could read differently (see Read). A zero ChunkedReader is ready once
// Reset; Reset it again for each body.
type ChunkedReader struct {
	br           *bufio.Reader
	trailerLimit int
	// n is what is left of the current chunk's data.
	n int64
	// afterData: a chunk's data was read, and its CRLF is still to come.
	afterData bool
	// excess is the framing read beyond what the data allows (see
	// chunkAllowance).
	excess  int64
	err     error
	trailer http.Header
	// line holds a line that did not arrive whole in br's buffer; kept
	// from one body to the next.
	line []byte
}

// Reset makes r read a new body from br. trailerLimit bounds the trailer
// section's field lines, their CRLFs counted (its final empty line is
// not); 0 admits no trailer field. Each chunk-size line is bounded too:
// 4 KiB with its extensions and CRLF.
func (r *ChunkedReader) Reset(br *bufio.Reader, trailerLimit int) {
	*r = ChunkedReader{br: br, trailerLimit: max(trailerLimit, 0), line: r.line[:0]}
}

// Read reads the body's data: at most what is left of the current chunk,
// and the next chunk-size line only once the current chunk is used up,
// so that a Read never waits for bytes its data does not need. It
// returns io.EOF once the last chunk and the trailer section, up to and
// including its empty line, were read; the byte after that is still in
// the bufio.Reader. Malformed framing is an *Error; a body cut short
// io.ErrUnexpectedEOF; other errors of the bufio.Reader (a timeout) are
// returned as they are. Once Read returned an error, it returns that
// error again. A zero-length Read reads nothing.
//
// Malformed is, beyond the grammar of RFC 9112 §7.1: a line ending in a
// bare LF, or a CR anywhere but before the LF; a chunk size of more than
// 16 hex digits, or more than an int64 holds; white space anywhere but
// around an extension's ';' and '='; chunk data not followed by
// exactly CRLF; an obs-folded trailer line; a trailer section longer than
// the limit; and more framing than data (see chunkAllowance).
func (r *ChunkedReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if r.n == 0 {
		if r.err = r.nextChunk(); r.err != nil {
			return 0, r.err
		}
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	n, err := r.br.Read(p)
	r.n -= int64(n)
	if err != nil {
		r.err = unexpected(err)
	}
	return n, r.err
}

// Trailer returns the trailer fields, their names canonical; nil until
// Read returned io.EOF, and when the body had none. Fields that must not
// be trailers (RFC 9110 §6.5.1: framing, routing, connection and
// authentication fields, request modifiers and content metadata) are
// left out: a backend that merges trailers into the header must not get
// them there.
func (r *ChunkedReader) Trailer() http.Header { return r.trailer }

// nextChunk reads the CRLF that ends the data just read, if any, and the
// next chunk-size line. At the last chunk it reads the trailer section
// and returns io.EOF.
func (r *ChunkedReader) nextChunk() error {
	if r.afterData {
		if err := r.readCRLF(); err != nil {
			return err
		}
		r.afterData = false
	}
	line, err := r.readLine(maxChunkLine, "chunk-size line too long")
	if err != nil {
		return err
	}
	n, err := chunkSize(line)
	switch {
	case err != nil:
		return err
	case n == 0:
		return r.readTrailer()
	}
	if err := r.charge(len(line), n); err != nil {
		return err
	}
	r.n, r.afterData = n, true
	return nil
}

// readCRLF reads the CRLF after a chunk's data. A byte other than CR
// fails at once, without waiting for the next.
func (r *ChunkedReader) readCRLF() error {
	for _, want := range []byte("\r\n") {
		c, err := r.br.ReadByte()
		if err != nil {
			return unexpected(err)
		}
		if c != want {
			return bad("chunk data not followed by CRLF")
		}
	}
	return nil
}

// charge counts a data chunk's framing, its size line and the CRLF after
// its data, against the allowance. The same sum as net/http's, so that
// no body it refuses for overhead is read here.
func (r *ChunkedReader) charge(lineLen int, n int64) error {
	// Past 1 MiB of data the allowance covers any excess there can be;
	// the min keeps 2*n from overflowing.
	r.excess += int64(lineLen) + 2 - chunkAllowance - 2*min(n, 1<<20)
	r.excess = max(r.excess, 0)
	if r.excess > maxExcess {
		return bad("chunked body holds too much framing for its data")
	}
	return nil
}

// readLine reads a line of at most limit bytes with its CRLF and returns
// it without the CRLF. The line is valid until br is next read: it is
// read in place when br holds it whole, the usual case, and gathered
// into r.line when not. tooLong is the reason a longer line is refused.
func (r *ChunkedReader) readLine(limit int, tooLong string) ([]byte, error) {
	var line []byte
	for {
		// Peek(1) waits for bytes only when none are buffered.
		if _, err := r.br.Peek(1); err != nil {
			return nil, unexpected(err)
		}
		buf, _ := r.br.Peek(r.br.Buffered())
		end := bytes.IndexByte(buf, '\n') + 1
		if end == 0 {
			end = len(buf)
		}
		if len(line)+end > limit {
			return nil, bad(tooLong)
		}
		ended := buf[end-1] == '\n'
		if ended && line == nil {
			line = buf[:end]
		} else {
			line = append(r.line[:len(line)], buf[:end]...)
			r.line = line
		}
		r.br.Discard(end)
		if ended {
			break
		}
	}
	n := len(line)
	if n < 2 || line[n-2] != '\r' {
		return nil, bad("line ends in a bare LF")
	}
	return line[:n-2], nil
}

// chunkSize parses a chunk-size line without its CRLF: 1 to 16 hex
// digits of no more than an int64 holds (net/http takes 16 digits as a
// uint64; a size it reads as another number must not be read here), then
// chunk extensions, which are checked and dropped.
func chunkSize(line []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		if !isHex(line[i]) {
			break
		}
		if i == 16 || n > math.MaxInt64>>4 {
			return 0, bad("chunk size too large")
		}
		n = n<<4 | int64(unhex(line[i]))
	}
	if i == 0 {
		return 0, bad("invalid chunk size")
	}
	if !validExtensions(line[i:]) {
		return 0, bad("invalid chunk extension")
	}
	return n, nil
}

// validExtensions reports whether s is a chunk-ext (RFC 9112 §7.1.1):
//
//	*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )
//
// Nothing else is allowed: no white space at the end, no empty name, no
// control character but HTAB, which quoted-string allows. Proxies that
// skip extensions up to the line's end differ on where a quoted CRLF or
// a bare CR ends the line; a strict grammar leaves none of that.
func validExtensions(s []byte) bool {
	for len(s) > 0 {
		s = skipBWS(s)
		if len(s) == 0 || s[0] != ';' {
			return false
		}
		s = skipBWS(s[1:])
		name := tokenLen(s)
		if name == 0 {
			return false
		}
		s = s[name:]
		if t := skipBWS(s); len(t) > 0 && t[0] == '=' {
			t = skipBWS(t[1:])
			v := tokenLen(t)
			if len(t) > 0 && t[0] == '"' {
				v = quotedLen(t)
			}
			if v == 0 {
				return false
			}
			s = t[v:]
		}
	}
	return true
}

func skipBWS(s []byte) []byte {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	return s
}

// tokenLen is the length of the token at the start of s.
func tokenLen(s []byte) int {
	i := 0
	for i < len(s) && tokenChars[s[i]] {
		i++
	}
	return i
}

// quotedLen is the length of the quoted-string at the start of s, which
// starts with '"'; 0 when it is not one.
func quotedLen(s []byte) int {
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			// quoted-pair: HTAB, SP, VCHAR or obs-text.
			if i++; i == len(s) || s[i] < ' ' && s[i] != '\t' || s[i] == 0x7f {
				return 0
			}
		case c < ' ' && c != '\t' || c == 0x7f:
			return 0
		}
	}
	return 0
}

// readTrailer reads the trailer section, up to and including its empty
// line, and returns io.EOF: the body's end.
func (r *ChunkedReader) readTrailer() error {
	left := r.trailerLimit
	var h http.Header
	for {
		line, err := r.readLine(max(left, 2), "trailer section too large")
		if err != nil {
			return err
		}
		if len(line) == 0 {
			r.trailer = h
			return io.EOF
		}
		left -= len(line) + 2
		if line[0] == ' ' || line[0] == '\t' {
			return bad("obs-folded trailer line")
		}
		fl := NewFieldLines(string(line))
		k, v, ok, malformed := fl.Next()
		if malformed || !ok {
			return bad("malformed trailer line")
		}
		if droppedTrailer(k) {
			continue
		}
		if h == nil {
			h = http.Header{}
		}
		h[k] = append(h[k], v)
	}
}

// droppedTrailer reports whether the field named k (canonical) is kept
// out of Trailer: RFC 9110 §6.5.1 forbids it in a trailer, since a
// recipient acts on it before the body.
func droppedTrailer(k string) bool {
	switch k {
	case "Transfer-Encoding", "Content-Length", "Trailer", // framing
		"Host",                                                          // routing
		"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Upgrade", // hop by hop
		"Authorization", "Proxy-Authorization", "Cookie", // authentication, state
		"Content-Encoding", "Content-Type", "Content-Range", // content metadata
		"Expect", "Max-Forwards", "Range", "Cache-Control", "Pragma": // request modifiers
		return true
	}
	return strings.HasPrefix(k, "If-") // conditionals
}

// unexpected is err, except that the connection's end is an error: the
// body was not complete.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
