package http1

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChunkedReader(t *testing.T) {
	tests := []struct {
		name, body string
		data       string
		trailer    http.Header
	}{
		{"empty", "0\r\n\r\n", "", nil},
		{"one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", nil},
		{"chunks", "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n", "hello world", nil},
		{"data holding framing", "c\r\n0\r\n\r\nGET /\r\n\r\n0\r\n\r\n", "0\r\n\r\nGET /\r\n", nil},
		{"uppercase hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789", nil},
		{"lowercase hex", "a\r\n0123456789\r\n0\r\n\r\n", "0123456789", nil},
		{"leading zeros", "000a\r\n0123456789\r\n000\r\n\r\n", "0123456789", nil},
		{"16 digits", "0000000000000005\r\nhello\r\n0000000000000000\r\n\r\n", "hello", nil},
		{"extension", "5;name\r\nhello\r\n0\r\n\r\n", "hello", nil},
		{"extension value", "5;name=value;other=1\r\nhello\r\n0;last=yes\r\n\r\n", "hello", nil},
		{"quoted extension", "5;q=\"a \\\"b\\\"; c=d\\\\\\t\xff\"\r\nhello\r\n0\r\n\r\n", "hello", nil},
		{"BWS", "5 ;a\r\nhello\r\n5\t; b = c ;d\t=\t\"e\" ;f\r\nworld\r\n0 \t;z\r\n\r\n", "helloworld", nil},
		{"trailer", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nx-other:  two words \r\nX-Sum: 2\r\nX-Empty:\r\n\r\n", "hello",
			http.Header{"X-Sum": {"1", "2"}, "X-Other": {"two words"}, "X-Empty": {""}}},
		{"obs-text in trailer", "0\r\nX: caf\xc3\xa9\tx\r\n\r\n", "", http.Header{"X": {"caf\xc3\xa9\tx"}}},
		{"forbidden trailer fields", "0\r\nContent-Length: 5\r\nHost: evil\r\ntransfer-encoding: chunked\r\nIf-Match: *\r\nX-Ok: 1\r\n\r\n", "",
			http.Header{"X-Ok": {"1"}}},
		{"only forbidden trailer fields", "0\r\nContent-Length: 5\r\nTrailer: X\r\n\r\n", "", nil},
		{"trailer at the limit", "0\r\nX: " + strings.Repeat("a", netTrailerLimit-5) + "\r\n\r\n", "",
			http.Header{"X": {strings.Repeat("a", netTrailerLimit-5)}}},
		{"longest size line", "1;" + strings.Repeat("a", maxChunkLine-4) + "\r\nx\r\n0\r\n\r\n", "x", nil},
		{"many small chunks", strings.Repeat("1\r\nx\r\n", 5000) + "0\r\n\r\n", strings.Repeat("x", 5000), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readChunked(t, strings.NewReader(tt.body+chunkedNext), 4096, netTrailerLimit, []int{512})
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			want := chunkedRead{Body: tt.data, Trailer: tt.trailer, Rest: chunkedNext}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			checkChunked(t, []byte(tt.body))
		})
	}
}

func TestChunkedReaderRefuses(t *testing.T) {
	malformed := func(reason string) error { return bad(reason) }
	tests := []struct {
		name, body string
		data       string // read before the error
		want       error
	}{
		{"bare LF in size line", "5\nhello\r\n0\r\n\r\n", "", malformed("line ends in a bare LF")},
		{"bare LF after extension", "5;a=b\nhello\r\n0\r\n\r\n", "", malformed("line ends in a bare LF")},
		{"bare LF after data", "5\r\nhello\n0\r\n\r\n", "hello", malformed("chunk data not followed by CRLF")},
		{"missing CRLF after data", "5\r\nhello0\r\n\r\n", "hello", malformed("chunk data not followed by CRLF")},
		{"data longer than size", "3\r\nhello\r\n0\r\n\r\n", "hel", malformed("chunk data not followed by CRLF")},
		{"CR alone after data", "5\r\nhello\r0\r\n\r\n", "hello", malformed("chunk data not followed by CRLF")},
		{"CR CR LF after data", "5\r\nhello\r\r\n0\r\n\r\n", "hello", malformed("chunk data not followed by CRLF")},
		{"size overflow", "8000000000000000\r\nhello\r\n0\r\n\r\n", "", malformed("chunk size too large")},
		{"size of a uint64", "ffffffffffffffff\r\nhello\r\n0\r\n\r\n", "", malformed("chunk size too large")},
		{"17 hex digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", "", malformed("chunk size too large")},
		{"17 zeros", "00000000000000000\r\n\r\n", "", malformed("chunk size too large")},
		{"non-hex", "g\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk size")},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"hex then junk", "5g\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"white space before size", " 5\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk size")},
		{"white space after size", "5 \r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"tab after size", "5\t\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"white space inside size", "1 0\r\n0123456789abcdef\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"white space after extension", "5;a \r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"white space after extension value", "5;a=b\t\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"negative", "-5\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk size")},
		{"plus sign", "+5\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk size")},
		{"empty size line", "\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk size")},
		{"empty extension", "5;\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"empty extension name", "5;=b\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"empty extension value", "5;a=\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"two semicolons", "5;;a\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"control char in extension", "5;a\x01b\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"NUL in extension value", "5;a=b\x00\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"DEL in quoted extension", "5;a=\"b\x7f\"\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"bare CR in extension", "5;a\rb\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"CR CR LF", "5\r\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"CR in quoted extension", "5;a=\"b\rc\"\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"unclosed quote", "5;a=\"b\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"quoted-pair of CR", "5;a=\"b\\\r\"\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"non-token extension name", "5;a@b\r\nhello\r\n0\r\n\r\n", "", malformed("invalid chunk extension")},
		{"size line too long", "1;" + strings.Repeat("a", maxChunkLine-3) + "\r\nx\r\n0\r\n\r\n", "",
			malformed("chunk-size line too long")},
		{"size line without end", "1;" + strings.Repeat("a", 10000), "", malformed("chunk-size line too long")},
		{"too much framing", strings.Repeat("1;"+strings.Repeat("e", 4000)+"\r\nx\r\n", 5) + "0\r\n\r\n", "xxxx",
			malformed("chunked body holds too much framing for its data")},
		{"trailer too large", "0\r\nX: " + strings.Repeat("a", netTrailerLimit-4) + "\r\n\r\n", "",
			malformed("trailer section too large")},
		{"trailer fields too large", "0\r\n" + strings.Repeat("X: "+strings.Repeat("a", 95)+"\r\n", 41) + "\r\n", "",
			malformed("trailer section too large")},
		{"trailer line without colon", "0\r\nNo colon\r\n\r\n", "", malformed("malformed trailer line")},
		{"white space before colon", "0\r\nX : y\r\n\r\n", "", malformed("malformed trailer line")},
		{"empty trailer name", "0\r\n: y\r\n\r\n", "", malformed("malformed trailer line")},
		{"control char in trailer", "0\r\nX: a\x00b\r\n\r\n", "", malformed("malformed trailer line")},
		{"bare CR in trailer", "0\r\nX: a\rb\r\n\r\n", "", malformed("malformed trailer line")},
		{"CR CR LF in trailer", "0\r\nX: a\r\r\n\r\n", "", malformed("malformed trailer line")},
		{"obs-fold in trailer", "0\r\nX: a\r\n b\r\n\r\n", "", malformed("obs-folded trailer line")},
		{"leading white space in trailer", "0\r\n\tX: a\r\n\r\n", "", malformed("obs-folded trailer line")},
		{"bare LF in trailer", "0\r\nX: a\n\r\n", "", malformed("line ends in a bare LF")},
		{"bare LF ending trailer", "0\r\nX: a\r\n\n", "", malformed("line ends in a bare LF")},
		{"bare LF ending body", "0\r\n\n", "", malformed("line ends in a bare LF")},
		{"nothing", "", "", io.ErrUnexpectedEOF},
		{"EOF mid size line", "5", "", io.ErrUnexpectedEOF},
		{"EOF mid extension", "5;a=\"b", "", io.ErrUnexpectedEOF},
		{"EOF mid CRLF", "5\r", "", io.ErrUnexpectedEOF},
		{"EOF mid data", "5\r\nhel", "hel", io.ErrUnexpectedEOF},
		{"EOF before CRLF after data", "5\r\nhello", "hello", io.ErrUnexpectedEOF},
		{"EOF mid CRLF after data", "5\r\nhello\r", "hello", io.ErrUnexpectedEOF},
		{"EOF before last chunk", "5\r\nhello\r\n", "hello", io.ErrUnexpectedEOF},
		{"EOF before trailer", "5\r\nhello\r\n0\r\n", "hello", io.ErrUnexpectedEOF},
		{"EOF mid trailer line", "0\r\nX: a", "", io.ErrUnexpectedEOF},
		{"EOF before trailer end", "0\r\nX: a\r\n", "", io.ErrUnexpectedEOF},
		{"EOF mid trailer end", "0\r\nX: a\r\n\r", "", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, src := range []struct {
				name    string
				bufSize int
				sizes   []int
			}{{"whole", 4096, []int{4096}}, {"trickled", 16, []int{1, 2, 0}}} {
				got, err := readChunked(t, strings.NewReader(tt.body), src.bufSize, netTrailerLimit, src.sizes)
				if got.Body != tt.data {
					t.Errorf("%s: read %q before the error, want %q", src.name, got.Body, tt.data)
				}
				if want, ok := tt.want.(*Error); ok {
					var e *Error
					if !errors.As(err, &e) {
						t.Fatalf("%s: error %#v, want %v", src.name, err, want)
					}
					if diff := cmp.Diff(want, e); diff != "" {
						t.Errorf("%s: (-want +got):\n%s", src.name, diff)
					}
				} else if err != tt.want {
					t.Errorf("%s: error %v, want %v", src.name, err, tt.want)
				}
			}
			checkChunked(t, []byte(tt.body))
		})
	}
}

// trailerLimit counts the field lines with their CRLFs, not the empty
// line that ends the section.
func TestChunkedTrailerLimit(t *testing.T) {
	const field = "X-A: 1\r\n" // 8 bytes
	tests := []struct {
		name, trailer string
		limit         int
		ok            bool
	}{
		{"no field, limit 0", "", 0, true},
		{"field, limit 0", field, 0, false},
		{"field, negative limit", field, -1, false},
		{"field at the limit", field, 8, true},
		{"field one over the limit", field, 7, false},
		{"two fields at the limit", field + field, 16, true},
		{"two fields one over", field + field, 15, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readChunked(t, strings.NewReader("0\r\n"+tt.trailer+"\r\n"), 4096, tt.limit, []int{512})
			if ok := err == nil; ok != tt.ok {
				t.Errorf("error %v, want success %v", err, tt.ok)
			}
		})
	}
}

// Each Read returns at most the rest of one chunk, and reads the next
// chunk-size line only in the Read after the chunk is used up.
func TestChunkedReaderChunkAtATime(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n" + chunkedNext))
	var r ChunkedReader
	r.Reset(br, 0)
	p := make([]byte, 100)
	type read struct {
		Data     string
		Err      error
		Buffered int
	}
	var got []read
	for range 4 {
		n, err := r.Read(p)
		got = append(got, read{string(p[:n]), err, br.Buffered()})
	}
	rest := len(chunkedNext)
	want := []read{
		{"abc", nil, rest + len("\r\n2\r\nde\r\n0\r\n\r\n")},
		{"de", nil, rest + len("\r\n0\r\n\r\n")},
		{"", io.EOF, rest},
		{"", io.EOF, rest},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// stepReader is a connection on which the client sent steps, each
// arriving as one read, and then stalled: reads past the steps return
// err.
type stepReader struct {
	steps []string
	err   error
	reads int
}

func (s *stepReader) Read(p []byte) (int, error) {
	s.reads++
	if len(s.steps) == 0 {
		return 0, s.err
	}
	n := copy(p, s.steps[0])
	if s.steps[0] = s.steps[0][n:]; s.steps[0] == "" {
		s.steps = s.steps[1:]
	}
	return n, nil
}

var errStalled = errors.New("stalled")

// A streaming client's data is passed on as it comes: no Read waits for
// bytes its data does not need, such as the CRLF after the data or the
// next chunk's size.
func TestChunkedReaderDoesNotWait(t *testing.T) {
	src := &stepReader{steps: []string{"5\r\nhel", "lo", "\r\n3\r", "\nabc"}, err: errStalled}
	var r ChunkedReader
	r.Reset(bufio.NewReader(src), 0)
	p := make([]byte, 100)
	var data []string
	var err error
	for err == nil {
		var n int
		n, err = r.Read(p)
		data = append(data, string(p[:n]))
	}
	if diff := cmp.Diff([]string{"hel", "lo", "abc", ""}, data); diff != "" {
		t.Errorf("reads (-want +got):\n%s", diff)
	}
	if err != errStalled {
		t.Errorf("error %v, want the connection's", err)
	}
	if n, again := r.Read(p); n != 0 || again != errStalled {
		t.Errorf("Read after the error: %d, %v", n, again)
	}
}

// A connection's error, such as its read deadline, is returned as it is,
// that the caller may tell a slow client from a malformed body.
func TestChunkedReaderConnError(t *testing.T) {
	src := &stepReader{steps: []string{"5\r\nhello\r\n"}, err: os.ErrDeadlineExceeded}
	var r ChunkedReader
	r.Reset(bufio.NewReader(src), 0)
	_, err := io.ReadAll(&r)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("error %v, want os.ErrDeadlineExceeded", err)
	}
}

// A zero-length Read reads nothing, not even into br's buffer.
func TestChunkedReaderZeroRead(t *testing.T) {
	src := &stepReader{steps: []string{"5\r\nhello\r\n0\r\n\r\n"}, err: io.EOF}
	br := bufio.NewReader(src)
	var r ChunkedReader
	r.Reset(br, 0)
	if n, err := r.Read(nil); n != 0 || err != nil || src.reads != 0 {
		t.Errorf("Read(nil) = %d, %v after %d reads of the connection, want 0, nil after none", n, err, src.reads)
	}
	p := make([]byte, 2)
	r.Read(p)
	buffered := br.Buffered()
	if n, err := r.Read(p[:0]); n != 0 || err != nil || br.Buffered() != buffered {
		t.Errorf("Read(p[:0]) = %d, %v, and %d bytes buffered, was %d", n, err, br.Buffered(), buffered)
	}
}

// One ChunkedReader reads body after body of a connection, as a
// keep-alive connection's requests come.
func TestChunkedReaderReset(t *testing.T) {
	long := "1;" + strings.Repeat("a", 3000) + "\r\nx\r\n" // gathered into r.line
	bodies := []string{"5\r\nhello\r\n0\r\nX: 1\r\n\r\n", long + "0\r\n\r\n", "3\r\nabc\r\n0\r\n\r\n"}
	br := bufio.NewReaderSize(strings.NewReader(strings.Join(bodies, "")+chunkedNext), 16)
	var r ChunkedReader
	var got []chunkedRead
	for range bodies {
		r.Reset(br, 100)
		b, err := io.ReadAll(&r)
		got = append(got, chunkedRead{Body: string(b), Trailer: r.Trailer()})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []chunkedRead{{Body: "hello", Trailer: http.Header{"X": {"1"}}}, {Body: "x"}, {Body: "abc"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if rest, _ := io.ReadAll(br); string(rest) != chunkedNext {
		t.Errorf("left %q after the bodies, want %q", rest, chunkedNext)
	}
}

func TestChunkedReaderAllocs(t *testing.T) {
	const body = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n"
	sr := strings.NewReader(body)
	br := bufio.NewReader(sr)
	var r ChunkedReader
	p := make([]byte, 3)
	allocs := testing.AllocsPerRun(100, func() {
		sr.Reset(body)
		br.Reset(sr)
		r.Reset(br, 100)
		for {
			if _, err := r.Read(p); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations a body, want 0", allocs)
	}
}

func BenchmarkChunkedReader(b *testing.B) {
	chunk := "1000\r\n" + strings.Repeat("x", 0x1000) + "\r\n"
	body := strings.Repeat(chunk, 16) + "0\r\n\r\n"
	sr := strings.NewReader(body)
	br := bufio.NewReader(sr)
	var r ChunkedReader
	p := make([]byte, 32<<10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		sr.Reset(body)
		br.Reset(sr)
		r.Reset(br, 0)
		for {
			if _, err := r.Read(p); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}
