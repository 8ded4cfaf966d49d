package static

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/textproto"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxRanges bounds the parts of a multipart answer; a request for more
// gets the whole file, as one for overlapping ranges that add up to more
// than the file does.
const maxRanges = 64

// sniffLen is how much of a file decides its type when its name does not.
const sniffLen = 512

// scratch is one request's reusable memory.
type scratch struct {
	codings [3]*coding
	ranges  [8]byteRange
	buf     []byte // formatting, sniffing
}

var scratchPool = sync.Pool{New: func() any { return &scratch{buf: make([]byte, 0, sniffLen)} }}

// copyBufPool holds the buffers for copies to a writer that cannot read
// from a file itself.
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// serveFile answers with t, or with its precompressed sibling when the
// client takes one. It owns t's file.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request, f fsys, t target, now int64, sc *scratch) Result {
	defer t.close()

	ctype := contentType(t, sc)
	body := t
	var enc *coding
	if len(s.codings) > 0 {
		for _, c := range order(s.codings, listField(r.Header, "Accept-Encoding"), sc.codings[:0]) {
			sib, err := s.openRegular(f, t.rel+c.suffix, now, sc)
			if err != nil {
				continue
			}
			body, enc = sib, c
			break
		}
	}
	if enc != nil {
		defer body.close()
	}
	fi := body.fi
	res := Result{File: body.rel}
	if enc != nil {
		res.Encoding = enc.name
	}

	h := w.Header()
	// One backing array for this answer's header values; each is cut to
	// capacity 1 so an Add by a later layer copies instead of overwriting
	// its neighbour.
	vals := make([]string, 8)
	size := fi.Size()
	modtime := fi.ModTime()
	m := s.meta.lookup(fi, enc, sc)
	etag := m.etag
	vals[0] = etag
	h["Etag"] = vals[0:1:1]
	if m.lastMod != "" {
		vals[1] = m.lastMod
		h["Last-Modified"] = vals[1:2:2]
	}
	if len(s.codings) > 0 {
		if len(h["Vary"]) == 0 {
			vals[6] = "Accept-Encoding"
			h["Vary"] = vals[6:7:7]
		} else {
			h["Vary"] = append(h["Vary"], "Accept-Encoding")
		}
	}
	if s.cacheControl != "" {
		vals[2] = s.cacheControl
		h["Cache-Control"] = vals[2:3:3]
	}

	rangeHeader, done := s.preconditions(w, r, etag, modtime)
	if done != 0 {
		res.Status = done
		return res
	}

	if enc != nil {
		h["Content-Encoding"] = enc.header[:1:1]
	}
	vals[3] = ctype
	h["Content-Type"] = vals[3:4:4]
	vals[4] = "bytes"
	h["Accept-Ranges"] = vals[4:5:5]

	ranges, err := parseRange(rangeHeader, size, sc.ranges[:0])
	switch {
	case errors.Is(err, errNoOverlap) && size == 0:
		// An empty file has no byte to satisfy a range with; some clients
		// send a Range with every request, so answer with the (empty) file.
		ranges = nil
	case err != nil:
		// Malformed or beyond the end: 416 with the length (RFC 9110
		// 15.5.17), for a malformed range too, as nginx does.
		delete(h, "Cache-Control")
		h["Content-Range"] = []string{"bytes */" + strconv.FormatInt(size, 10)}
		res.Status = writeText(w, r, http.StatusRequestedRangeNotSatisfiable)
		return res
	}
	if len(ranges) > maxRanges || sumRanges(ranges) > size {
		ranges = nil
	}

	switch len(ranges) {
	case 0:
		vals[5] = m.length
		h["Content-Length"] = vals[5:6:6]
		w.WriteHeader(http.StatusOK)
		res.Status = http.StatusOK
		if r.Method != http.MethodHead {
			body.writeAll(w, size)
		}
	case 1:
		ra := ranges[0]
		vals[7] = ra.contentRange(size)
		h["Content-Range"] = vals[7:8:8]
		vals[5] = strconv.FormatInt(ra.length, 10)
		h["Content-Length"] = vals[5:6:6]
		w.WriteHeader(http.StatusPartialContent)
		res.Status = http.StatusPartialContent
		if r.Method != http.MethodHead {
			body.writeRange(w, ra.start, ra.length)
		}
	default:
		res.Status = writeMultipart(w, r, body, ranges, ctype, size)
	}
	return res
}

// preconditions evaluates the conditional headers in RFC 9110 13.2.2's
// order. It returns the Range header still in force, or the status it
// answered with.
func (s *Server) preconditions(w http.ResponseWriter, r *http.Request, etag string, modtime time.Time) (string, int) {
	ch := checkIfMatch(r, etag)
	if ch == condNone {
		ch = checkIfUnmodifiedSince(r, modtime)
	}
	if ch == condFalse {
		delete(w.Header(), "Cache-Control")
		return "", writeText(w, r, http.StatusPreconditionFailed)
	}
	switch checkIfNoneMatch(r, etag) {
	case condFalse:
		return "", writeNotModified(w)
	case condNone:
		if checkIfModifiedSince(r, modtime) == condFalse {
			return "", writeNotModified(w)
		}
	}
	rh := r.Header.Get("Range")
	if rh != "" && checkIfRange(r, etag, modtime) == condFalse {
		rh = ""
	}
	return rh, 0
}

// writeNotModified keeps the validators, Cache-Control and Vary (RFC 9110
// 15.4.5) and, like nginx, Last-Modified next to the ETag.
func writeNotModified(w http.ResponseWriter) int {
	h := w.Header()
	delete(h, "Content-Type")
	delete(h, "Content-Length")
	delete(h, "Content-Encoding")
	w.WriteHeader(http.StatusNotModified)
	return http.StatusNotModified
}

// contentType is t's type by extension, else sniffed from its first bytes.
func contentType(t target, sc *scratch) string {
	if t.c != nil && t.c.ctype != "" {
		return t.c.ctype
	}
	if ext := path.Ext(t.rel); ext != "" {
		if ct := mime.TypeByExtension(ext); ct != "" {
			return ct
		}
	}
	if t.f == nil {
		return http.DetectContentType(t.c.data[:min(len(t.c.data), sniffLen)])
	}
	buf := sc.buf[:sniffLen]
	n, _ := t.f.ReadAt(buf, 0)
	return http.DetectContentType(buf[:n])
}

// makeETag is a strong validator from the modification time (to the
// nanosecond) and size, with the encoding of a precompressed sibling, so
// each representation has its own.
func makeETag(sc *scratch, modtime time.Time, size int64, enc *coding) string {
	b := append(sc.buf[:0], '"')
	b = strconv.AppendInt(b, modtime.UnixNano(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, size, 16)
	if enc != nil {
		b = append(b, '-')
		b = append(b, enc.tag...)
	}
	b = append(b, '"')
	sc.buf = b
	return string(b)
}

// writeAll sends size bytes of t from its start.
func (t target) writeAll(w http.ResponseWriter, size int64) {
	if t.f == nil {
		w.Write(t.c.data[:size])
		return
	}
	copyFile(w, t.f, size)
}

// writeRange sends n bytes of t from offset start.
func (t target) writeRange(w http.ResponseWriter, start, n int64) error {
	if t.f == nil {
		_, err := w.Write(t.c.data[start : start+n])
		return err
	}
	if _, err := t.f.Seek(start, io.SeekStart); err != nil {
		return err
	}
	copyRange(w, t.f, n)
	return nil
}

// copyFile sends size bytes of f from its start. A writer that reads from
// a file itself gets the *os.File unwrapped, so it can use sendfile.
func copyFile(w http.ResponseWriter, f *os.File, size int64) {
	if rf, ok := w.(io.ReaderFrom); ok {
		rf.ReadFrom(f)
		return
	}
	copyBuffered(w, f, size)
}

// copyRange sends n bytes from f's offset; net/http's sendfile path takes
// an *io.LimitedReader over an *os.File.
func copyRange(w http.ResponseWriter, f *os.File, n int64) {
	if rf, ok := w.(io.ReaderFrom); ok {
		rf.ReadFrom(&io.LimitedReader{R: f, N: n})
		return
	}
	copyBuffered(w, f, n)
}

// copyBuffered copies through a pooled buffer: io.Copy would find
// (*os.File).WriteTo and allocate its own.
func copyBuffered(w io.Writer, f *os.File, n int64) {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	for n > 0 {
		chunk := buf
		if int64(len(chunk)) > n {
			chunk = chunk[:n]
		}
		m, err := f.Read(chunk)
		if m > 0 {
			if _, werr := w.Write(chunk[:m]); werr != nil {
				return
			}
			n -= int64(m)
		}
		if err != nil {
			return
		}
	}
}

// writeMultipart answers several ranges as multipart/byteranges, laid out
// as nginx does, with its length counted ahead.
func writeMultipart(w http.ResponseWriter, r *http.Request, body target, ranges []byteRange, ctype string, size int64) int {
	var rnd [12]byte
	rand.Read(rnd[:])
	boundary := hex.EncodeToString(rnd[:])
	heads := make([]string, len(ranges))
	total := int64(0)
	for i, ra := range ranges {
		heads[i] = "\r\n--" + boundary + "\r\nContent-Type: " + ctype + "\r\nContent-Range: " + ra.contentRange(size) + "\r\n\r\n"
		total += int64(len(heads[i])) + ra.length
	}
	tail := "\r\n--" + boundary + "--\r\n"
	total += int64(len(tail))

	h := w.Header()
	h["Content-Type"] = []string{"multipart/byteranges; boundary=" + boundary}
	h["Content-Length"] = []string{strconv.FormatInt(total, 10)}
	w.WriteHeader(http.StatusPartialContent)
	if r.Method == http.MethodHead {
		return http.StatusPartialContent
	}
	for i, ra := range ranges {
		if _, err := io.WriteString(w, heads[i]); err != nil {
			return http.StatusPartialContent
		}
		if err := body.writeRange(w, ra.start, ra.length); err != nil {
			return http.StatusPartialContent
		}
	}
	io.WriteString(w, tail)
	return http.StatusPartialContent
}

// statusText holds the short bodies of the answers that are not a file.
var statusText = func() map[int]string {
	m := map[int]string{}
	for _, code := range []int{400, 404, 405, 412, 416, 500, http.StatusPermanentRedirect} {
		m[code] = strconv.Itoa(code) + " " + http.StatusText(code) + "\n"
	}
	return m
}()

// fail answers with a short text body and reports it.
func fail(w http.ResponseWriter, r *http.Request, code int) Result {
	return Result{Status: writeText(w, r, code)}
}

// writeText answers code with a one-line text body, dropping the file's
// representation headers.
func writeText(w http.ResponseWriter, r *http.Request, code int) int {
	body, ok := statusText[code]
	if !ok {
		body = strconv.Itoa(code) + " " + http.StatusText(code) + "\n"
	}
	h := w.Header()
	delete(h, "Content-Encoding")
	delete(h, "Accept-Ranges")
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		io.WriteString(w, body)
	}
	return code
}

// listField is a list field's value over all its field lines, combined
// as RFC 9110 5.3 says a recipient may: a client or a proxy may split a
// list, and a later line counts as much as the first.
func listField(h http.Header, name string) string {
	vs := h[name]
	switch len(vs) {
	case 0:
		return ""
	case 1:
		return vs[0]
	}
	return strings.Join(vs, ", ")
}

type condResult int

const (
	condNone condResult = iota
	condTrue
	condFalse
)

func checkIfMatch(r *http.Request, etag string) condResult {
	im := listField(r.Header, "If-Match")
	if im == "" {
		return condNone
	}
	for {
		im = textproto.TrimString(im)
		if len(im) == 0 {
			break
		}
		if im[0] == ',' {
			im = im[1:]
			continue
		}
		if im[0] == '*' {
			return condTrue
		}
		e, remain := scanETag(im)
		if e == "" {
			break
		}
		if etagStrongMatch(e, etag) {
			return condTrue
		}
		im = remain
	}
	return condFalse
}

func checkIfUnmodifiedSince(r *http.Request, modtime time.Time) condResult {
	ius := r.Header.Get("If-Unmodified-Since")
	if ius == "" || isZeroTime(modtime) {
		return condNone
	}
	t, err := http.ParseTime(ius)
	if err != nil {
		return condNone
	}
	// Last-Modified carries whole seconds.
	if modtime.Truncate(time.Second).Compare(t) <= 0 {
		return condTrue
	}
	return condFalse
}

func checkIfNoneMatch(r *http.Request, etag string) condResult {
	inm := listField(r.Header, "If-None-Match")
	if inm == "" {
		return condNone
	}
	buf := inm
	for {
		buf = textproto.TrimString(buf)
		if len(buf) == 0 {
			break
		}
		if buf[0] == ',' {
			buf = buf[1:]
			continue
		}
		if buf[0] == '*' {
			return condFalse
		}
		e, remain := scanETag(buf)
		if e == "" {
			break
		}
		if etagWeakMatch(e, etag) {
			return condFalse
		}
		buf = remain
	}
	return condTrue
}

func checkIfModifiedSince(r *http.Request, modtime time.Time) condResult {
	ims := r.Header.Get("If-Modified-Since")
	if ims == "" || isZeroTime(modtime) {
		return condNone
	}
	t, err := http.ParseTime(ims)
	if err != nil {
		return condNone
	}
	if modtime.Truncate(time.Second).Compare(t) <= 0 {
		return condFalse
	}
	return condTrue
}

// checkIfRange: an ETag must match strongly; a date must equal
// Last-Modified exactly.
func checkIfRange(r *http.Request, etag string, modtime time.Time) condResult {
	ir := r.Header.Get("If-Range")
	if ir == "" {
		return condNone
	}
	if e, _ := scanETag(ir); e != "" {
		if etagStrongMatch(e, etag) {
			return condTrue
		}
		return condFalse
	}
	if isZeroTime(modtime) {
		return condFalse
	}
	t, err := http.ParseTime(ir)
	if err != nil {
		return condFalse
	}
	if t.Unix() == modtime.Unix() {
		return condTrue
	}
	return condFalse
}

// scanETag returns the first ETag in s (weak or strong) and the rest.
func scanETag(s string) (etag string, remain string) {
	s = textproto.TrimString(s)
	start := 0
	if strings.HasPrefix(s, "W/") {
		start = 2
	}
	if len(s[start:]) < 2 || s[start] != '"' {
		return "", ""
	}
	// ETag is either W/"text" or "text"; see RFC 9110 8.8.3.
	for i := start + 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0x21 || c >= 0x23 && c <= 0x7E || c >= 0x80:
		case c == '"':
			return s[:i+1], s[i+1:]
		default:
			return "", ""
		}
	}
	return "", ""
}

func etagStrongMatch(a, b string) bool {
	return a == b && a != "" && a[0] == '"'
}

func etagWeakMatch(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

var unixEpoch = time.Unix(0, 0)

func isZeroTime(t time.Time) bool {
	return t.IsZero() || t.Equal(unixEpoch)
}

// byteRange is one satisfiable range of a representation.
type byteRange struct {
	start, length int64
}

func (r byteRange) contentRange(size int64) string {
	b := make([]byte, 0, 48)
	b = append(b, "bytes "...)
	b = strconv.AppendInt(b, r.start, 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, r.start+r.length-1, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, size, 10)
	return string(b)
}

var (
	errNoOverlap    = errors.New("no range overlaps the representation")
	errInvalidRange = errors.New("invalid range")
)

// parseRange reads a Range value for a representation of size bytes. A
// unit other than bytes is ignored (no ranges, no error); a malformed
// bytes range is errInvalidRange; ranges all beyond the end are
// errNoOverlap. A suffix range of 0 bytes is not satisfiable.
func parseRange(s string, size int64, out []byteRange) ([]byteRange, error) {
	if s == "" {
		return nil, nil
	}
	const b = "bytes="
	if len(s) < len(b) || !strings.EqualFold(s[:len(b)], b) {
		return nil, nil
	}
	noOverlap := false
	for ra := range strings.SplitSeq(s[len(b):], ",") {
		ra = textproto.TrimString(ra)
		if ra == "" {
			continue
		}
		start, end, ok := strings.Cut(ra, "-")
		if !ok {
			return nil, errInvalidRange
		}
		start, end = textproto.TrimString(start), textproto.TrimString(end)
		var r byteRange
		if start == "" {
			if end == "" || end[0] == '-' || end[0] == '+' {
				return nil, errInvalidRange
			}
			n, err := strconv.ParseInt(end, 10, 64)
			if err != nil || n < 0 {
				return nil, errInvalidRange
			}
			if n == 0 || size == 0 {
				noOverlap = true
				continue
			}
			n = min(n, size)
			r.start = size - n
			r.length = n
		} else {
			if start[0] == '+' {
				return nil, errInvalidRange
			}
			i, err := strconv.ParseInt(start, 10, 64)
			if err != nil || i < 0 {
				return nil, errInvalidRange
			}
			if i >= size {
				noOverlap = true
				if end != "" {
					if j, err := strconv.ParseInt(end, 10, 64); err != nil || j < i || end[0] == '+' {
						return nil, errInvalidRange
					}
				}
				continue
			}
			r.start = i
			if end == "" {
				r.length = size - i
			} else {
				if end[0] == '+' {
					return nil, errInvalidRange
				}
				j, err := strconv.ParseInt(end, 10, 64)
				if err != nil || i > j {
					return nil, errInvalidRange
				}
				j = min(j, size-1)
				r.length = j - i + 1
			}
		}
		out = append(out, r)
	}
	if noOverlap && len(out) == 0 {
		return nil, errNoOverlap
	}
	return out, nil
}

func sumRanges(ranges []byteRange) (n int64) {
	for _, r := range ranges {
		n += r.length
	}
	return n
}
