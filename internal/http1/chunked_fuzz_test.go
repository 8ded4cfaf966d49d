package http1

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
)

// Differential fuzz test of ChunkedReader against net/http's chunked
// body reader, as fuzz_test.go does for the heads: a body ChunkedReader
// reads must be read by net/http with the same data and trailer, ending
// at the same byte, so that the request pipelined after it starts at the
// same place for both. ChunkedReader may refuse more.

// chunkedHead and chunkedNext frame a fuzzed body for net/http: the
// request whose body it is, and a request pipelined after it.
const (
	chunkedHead = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	chunkedNext = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
)

// netTrailerLimit is the largest trailer limit at which ChunkedReader
// reads no trailer net/http refuses: net/http wants the whole section,
// its final empty line included, within its 4 KiB buffer.
const netTrailerLimit = 4096 - len("\r\n")

// chunkedSeeds are the seed corpus of FuzzChunkedBody. Those with file
// set are also committed under testdata/fuzz/FuzzChunkedBody under that
// name.
var chunkedSeeds = []struct{ file, raw string }{
	{"", "0\r\n\r\n"},
	{"two_chunks", "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"},
	{"", "A\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"},
	{"", "000a\r\n0123456789\r\n000\r\n\r\n"},
	{"", "0000000000000005\r\nhello\r\n0\r\n\r\n"},
	{"", "00000000000000005\r\nhello\r\n0\r\n\r\n"},
	{"", "8000000000000000\r\nhello\r\n0\r\n\r\n"},
	{"", "ffffffffffffffff\r\nhello\r\n0\r\n\r\n"},
	{"extensions", "5;a\r\nhello\r\n5;a=b;c=\"d;e\\\"\"\r\nworld\r\n0;last\r\n\r\n"},
	{"bws_before_semicolon", "5 ;a\r\nhello\r\n5\t; a = b ;c\r\nworld\r\n0 ;z\r\n\r\n"},
	{"", "5 \r\nhello\r\n0\r\n\r\n"},
	{"", "5;a \r\nhello\r\n0\r\n\r\n"},
	{"", " 5\r\nhello\r\n0\r\n\r\n"},
	{"", "-5\r\nhello\r\n0\r\n\r\n"},
	{"", "0x5\r\nhello\r\n0\r\n\r\n"},
	{"", "+5\r\nhello\r\n0\r\n\r\n"},
	{"", "\r\nhello\r\n0\r\n\r\n"},
	{"", "5;\r\nhello\r\n0\r\n\r\n"},
	{"", "5;a=\r\nhello\r\n0\r\n\r\n"},
	{"ext_control", "5;a=b\x01c\r\nhello\r\n0\r\n\r\n"},
	{"ext_bare_cr", "5;a\rb\r\nhello\r\n0\r\n\r\n"},
	{"", "5;a=\"b\rc\"\r\nhello\r\n0\r\n\r\n"},
	{"", "5;a=\"b\r\nhello\r\n0\r\n\r\n"},
	{"bare_lf_size", "5\nhello\r\n0\r\n\r\n"},
	{"bare_lf_after_data", "5\r\nhello\n0\r\n\r\n"},
	{"", "5\r\nhello\r\n0\n\n"},
	{"", "5\r\nhello0\r\n\r\n"},
	{"data_longer_than_size", "3\r\nhello\r\n0\r\n\r\n"},
	{"", "5\r\nhello\r\r\n0\r\n\r\n"},
	{"trailer", "5\r\nhello\r\n0\r\nX-Sum: 1\r\nx-other:  two words \r\nX-Sum: 2\r\n\r\n"},
	{"trailer_forbidden_fields", "0\r\nContent-Length: 5\r\nHost: evil\r\nTransfer-Encoding: chunked\r\nX-Ok: 1\r\n\r\n"},
	{"trailer_obs_fold", "0\r\nX-A: a\r\n b\r\n\r\n"},
	{"", "0\r\n X-A: a\r\n\r\n"},
	{"", "0\r\nX-A : a\r\n\r\n"},
	{"", "0\r\nNo colon\r\n\r\n"},
	{"", "0\r\nX-A: a\x00b\r\n\r\n"},
	{"", "0\r\nX-A: \xff obs-text\r\n\r\n"},
	{"", "0\r\nX-A: a\n\r\n"},
	{"", "0\r\nX-A: a\r\r\n\r\n"},
	{"trailer_smuggle", "0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"},
	{"", "0\r\nX: " + strings.Repeat("a", netTrailerLimit-5) + "\r\n\r\n"},
	{"", "0\r\nX: " + strings.Repeat("a", netTrailerLimit-4) + "\r\n\r\n"},
	{"", "1;" + strings.Repeat("a", 4090) + "\r\nx\r\n0\r\n\r\n"},
	{"", "1;" + strings.Repeat("a", 4091) + "\r\nx\r\n0\r\n\r\n"},
	{"", strings.Repeat("1;"+strings.Repeat("e", 4000)+"\r\nx\r\n", 5) + "0\r\n\r\n"},
	{"", "5\r\nhel"},
	{"", "5\r\nhello\r\n0\r\n"},
	{"", "5"},
}

func FuzzChunkedBody(f *testing.F) {
	for _, s := range chunkedSeeds {
		f.Add([]byte(s.raw))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkChunked(t, body)
	})
}

// chunkedRead is what a reader made of a chunked body.
type chunkedRead struct {
	Body    string
	Trailer http.Header
	// Rest is what was left in the reader after the body.
	Rest string
	Err  string
}

// checkChunked reads body with ChunkedReader, with a pipelined request
// after it, in large reads and in small ones from a trickle of bytes,
// which must come to the same result. When ChunkedReader accepts body,
// net/http must read it and the request after it the same way.
func checkChunked(t *testing.T, body []byte) {
	t.Helper()
	in := string(body) + chunkedNext
	got, err := readChunked(t, strings.NewReader(in), 4096, netTrailerLimit, []int{512})
	trickled, _ := readChunked(t, iotest.OneByteReader(strings.NewReader(in)), 16, netTrailerLimit, []int{1, 0, 3, 7, 2})
	// (DeepEqual for every input; cmp.Diff, much slower, only to report.)
	if !reflect.DeepEqual(got, trickled) {
		t.Fatalf("ChunkedReader reads %q differently a byte at a time (-whole +trickled):\n%s", body, cmp.Diff(got, trickled))
	}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) && err != io.ErrUnexpectedEOF {
			t.Fatalf("ChunkedReader refuses %q with %#v, want an *Error or io.ErrUnexpectedEOF", body, err)
		}
		return
	}
	want := readNetHTTP(t, withoutBWS(in))
	if want.Err != "" {
		t.Fatalf("ChunkedReader accepts what net/http refuses (%s):\n%q", want.Err, body)
	}
	for k := range want.Trailer {
		if droppedTrailer(k) {
			delete(want.Trailer, k)
		}
	}
	if len(want.Trailer) == 0 {
		want.Trailer = nil
	}
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("ChunkedReader differs from net/http (-net/http +ours) on\n%q:\n%s", body, cmp.Diff(want, got))
	}
}

// readChunked reads the chunked body at the start of src with a
// ChunkedReader, through a bufio.Reader of bufSize bytes, in reads of
// the sizes given, in turn. It checks the rules every Read keeps.
func readChunked(t *testing.T, src io.Reader, bufSize, trailerLimit int, sizes []int) (chunkedRead, error) {
	t.Helper()
	br := bufio.NewReaderSize(src, bufSize)
	var r ChunkedReader
	r.Reset(br, trailerLimit)
	var got chunkedRead
	var body strings.Builder
	p := make([]byte, 4096)
	var err error
	for i, idle := 0, 0; err == nil; i++ {
		size := sizes[i%len(sizes)]
		var n int
		n, err = r.Read(p[:size])
		switch {
		case n < 0 || n > size:
			t.Fatalf("Read of %d bytes returns %d", size, n)
		case size == 0 && (n != 0 || err != nil):
			t.Fatalf("a zero-length Read returns %d, %v", n, err)
		case err == nil && r.Trailer() != nil:
			t.Fatalf("Trailer is %v before the end of the body", r.Trailer())
		}
		body.Write(p[:n])
		if idle++; n > 0 {
			idle = 0
		}
		if idle > 10 {
			t.Fatal("Read returns neither data nor an error")
		}
	}
	got.Body = body.String()
	for _, size := range []int{0, 1, 512} {
		if n, again := r.Read(p[:size]); n != 0 || again != err {
			t.Fatalf("Read after %v returns %d, %v", err, n, again)
		}
	}
	if err != io.EOF {
		got.Err = err.Error()
		return got, err
	}
	got.Trailer = r.Trailer()
	rest, _ := io.ReadAll(br)
	got.Rest = string(rest)
	return got, nil
}

// readNetHTTP reads in, a chunked body and what follows it, as net/http
// reads the body of a request.
func readNetHTTP(t *testing.T, in string) chunkedRead {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(chunkedHead + in))
	req, err := http.ReadRequest(br)
	if err != nil {
		t.Fatalf("net/http refuses the head: %v", err)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return chunkedRead{Err: err.Error()}
	}
	rest, _ := io.ReadAll(br)
	return chunkedRead{Body: string(body), Trailer: req.Trailer, Rest: string(rest)}
}

// withoutBWS returns in, which starts with a chunked body ChunkedReader
// accepts, without the white space between a chunk size and its first
// ';': RFC 9112 allows it (BWS) and ChunkedReader reads it, net/http
// refuses it. Nothing else is changed.
func withoutBWS(in string) string {
	var b strings.Builder
	for {
		line, rest, _ := strings.Cut(in, "\r\n")
		digits := 0
		for digits < len(line) && isHex(line[digits]) {
			digits++
		}
		b.WriteString(line[:digits])
		b.WriteString(strings.TrimLeft(line[digits:], " \t"))
		b.WriteString("\r\n")
		size, err := strconv.ParseInt(line[:digits], 16, 64)
		if err != nil {
			panic(fmt.Sprintf("withoutBWS: not an accepted chunk-size line: %q", line))
		}
		if size == 0 {
			b.WriteString(rest)
			return b.String()
		}
		b.WriteString(rest[:size+2])
		in = rest[size+2:]
	}
}

// withoutBWS, which the fuzz test leans on, takes out the white space
// before a chunk size's ';' and nothing else.
func TestWithoutBWS(t *testing.T) {
	for in, want := range map[string]string{
		"0\r\n\r\n": "0\r\n\r\n",
		"5 ;a\r\nhe ;o\r\n3\t \t;b ; c\r\n  ;\r\n0 ;z\r\nX: 1 ;\r\n\r\nrest ;": "5;a\r\nhe ;o\r\n3;b ; c\r\n  ;\r\n0;z\r\nX: 1 ;\r\n\r\nrest ;",
	} {
		if got := withoutBWS(in); got != want {
			t.Errorf("withoutBWS(%q) = %q, want %q", in, got, want)
		}
	}
}
