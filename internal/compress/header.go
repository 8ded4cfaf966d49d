package compress

import (
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Applies reports whether an answer with this status, to a request with
// this method, with these header fields and this body length (-1 when
// unknown) is to be compressed. It does not look at the request's
// Accept-Encoding: Negotiate does.
//
// Not compressed: 1xx, 204 and 304 (no body; PrepareNotModified gives a
// 304 its header fields), 206 (PreparePartial gives it Vary) and any
// answer with Content-Range (the range is of the identity body), a 2xx
// to CONNECT (a tunnel), an answer that already has a Content-Encoding
// or says Cache-Control: no-transform, a content type outside Types, and
// a body of known length under MinSize.
//
// A HEAD is judged as the GET would be, from its Content-Length field
// (pass the length the GET would have): RFC 9110 9.3.2 asks that a HEAD's
// header fields be those of the GET, so a cache that stores them sees the
// same Content-Encoding, Vary and ETag. The caller Prepares the header and
// writes no body.
func (c *Compressor) Applies(status int, method string, h http.Header, contentLength int64) bool {
	if status < 200 || status == http.StatusNoContent || status == http.StatusNotModified ||
		status == http.StatusPartialContent {
		return false
	}
	if method == http.MethodConnect {
		return false
	}
	if hasNonEmpty(h["Content-Encoding"]) || len(h["Content-Range"]) > 0 {
		return false
	}
	if hasToken(h["Cache-Control"], "no-transform") {
		return false
	}
	if contentLength >= 0 && contentLength < c.minSize {
		return false
	}
	ct := h["Content-Type"]
	return len(ct) > 0 && c.typeMatches(ct[0])
}

// Prepare edits the answer's header fields for a body compressed with
// enc: Content-Encoding is set; Vary gains Accept-Encoding (AddVary);
// Content-Length goes (the compressed length is not known in advance);
// Accept-Ranges goes (ranges of a body made on the fly cannot be served);
// a strong ETag becomes weak, as nginx does, because the bytes differ from
// the identity body's while the representation's meaning does not, so
// If-None-Match (weak comparison) still revalidates; Content-MD5,
// Content-Digest and Repr-Digest go, because they describe bytes that are
// no longer sent.
func Prepare(h http.Header, enc string) {
	h.Set("Content-Encoding", enc)
	AddVary(h)
	h.Del("Content-Length")
	h.Del("Accept-Ranges")
	h.Del("Content-Md5")
	h.Del("Content-Digest")
	h.Del("Repr-Digest")
	if tags := h["Etag"]; len(tags) > 0 {
		for i, t := range tags {
			if strings.HasPrefix(t, `"`) {
				tags[i] = "W/" + t
			}
		}
	}
}

// AddVary adds Accept-Encoding to Vary unless it (or "*") is already
// there, appending to the last existing Vary line so the answer keeps one
// field line. It is for every answer whose type could be compressed,
// compressed or not this time, so a shared cache does not hand the
// gzipped copy to a client that did not ask for gzip, or the reverse.
func AddVary(h http.Header) {
	vs := h["Vary"]
	for _, v := range vs {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			tok = strings.TrimSpace(tok)
			if tok == "*" || strings.EqualFold(tok, "Accept-Encoding") {
				return
			}
		}
	}
	switch {
	case len(vs) == 0:
		h.Set("Vary", "Accept-Encoding")
	case strings.TrimSpace(vs[len(vs)-1]) == "":
		vs[len(vs)-1] = "Accept-Encoding"
	default:
		vs[len(vs)-1] += ", Accept-Encoding"
	}
}

// Compressible reports whether a Content-Type field value is one of
// Types: the integrator calls AddVary for such answers even when the
// client did not ask for compression.
func (c *Compressor) Compressible(contentType string) bool { return c.typeMatches(contentType) }

func hasNonEmpty(vs []string) bool {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return true
		}
	}
	return false
}

// hasToken reports whether a comma-separated list field holds tok as a
// directive name (case-insensitive, ignoring any "=value").
func hasToken(vs []string, tok string) bool {
	for _, v := range vs {
		for v != "" {
			var d string
			d, v, _ = strings.Cut(v, ",")
			name, _, _ := strings.Cut(d, "=")
			if strings.EqualFold(strings.TrimSpace(name), tok) {
				return true
			}
		}
	}
	return false
}

// PrepareNotModified edits a 304's header fields to be those of the 200
// it revalidates (RFC 9110 15.4.5), as Prepare and AddVary would have
// left them, so that a cache updates the answer it holds and keeps
// telling the compressed copy from the identity one.
//
// A 304 shows neither the type nor the length of its representation, so
// it gains Vary: Accept-Encoding unless its own fields show the 200 was
// never compressed (a Content-Type outside Types, a Content-Encoding,
// Cache-Control: no-transform), or, with no Content-Type, the extension
// of staticPath names a type outside Types: a static route takes a
// file's type from its path's extension, so the caller passes the
// request's path for a static route's 304 ("" for an app's), and an
// image's 304 says no Vary, as its 200 did not. Its strong ETag, which
// the app or the static route gives as the identity body's, becomes
// weak when the client takes a coding offered and its If-None-Match
// names the weak form: what it revalidates is the compressed answer,
// whose ETag Prepare made weak.
// A client that names only the strong form holds the identity body, and
// the ETag stays as it is.
func (c *Compressor) PrepareNotModified(h http.Header, staticPath string, acceptEncoding, ifNoneMatch []string) {
	if hasNonEmpty(h["Content-Encoding"]) || hasToken(h["Cache-Control"], "no-transform") {
		return
	}
	if ct := h["Content-Type"]; len(ct) > 0 && strings.TrimSpace(ct[0]) != "" {
		if !c.typeMatches(ct[0]) {
			return
		}
	} else if t := mime.TypeByExtension(path.Ext(staticPath)); t != "" && !c.typeMatches(t) {
		return
	}
	AddVary(h)
	tags := h["Etag"]
	if len(tags) != 1 || !strings.HasPrefix(tags[0], `"`) {
		return
	}
	if listsETag(ifNoneMatch, "W/"+tags[0]) && c.Negotiate(acceptEncoding) != "" {
		tags[0] = "W/" + tags[0]
	}
}

// listsETag reports whether the entity-tag lists in lines (If-None-Match's
// field lines) hold tag exactly, weak or strong as written. A tag's
// opaque part may hold commas, so the lists are scanned tag by tag, not
// split.
func listsETag(lines []string, tag string) bool {
	for _, s := range lines {
		for {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			t, rest, ok := cutETag(s)
			if !ok {
				break
			}
			if t == tag {
				return true
			}
			s = rest
		}
	}
	return false
}

// cutETag takes the entity-tag at the start of s (RFC 9110 8.8.3:
// [W/] DQUOTE *etagc DQUOTE) and returns it and what follows; ok is false
// when s does not start with one.
func cutETag(s string) (tag, rest string, ok bool) {
	start := 0
	if strings.HasPrefix(s, "W/") {
		start = 2
	}
	if len(s) < start+2 || s[start] != '"' {
		return "", "", false
	}
	end := strings.IndexByte(s[start+1:], '"')
	if end < 0 {
		return "", "", false
	}
	end += start + 2
	return s[:end], s[end:], true
}

// PreparePartial edits a 206's header fields for a client that would
// have been sent its representation compressed without the Range: the
// part is of the identity body, chosen because the client asked for a
// range, so the answer varies by Accept-Encoding as the 200 would, and
// gains Vary: Accept-Encoding if the whole would have been compressed:
// a type in Types and a complete length (Content-Range's) of at least
// MinSize or unknown. A multipart/byteranges answer does not show its
// parts' type and length in its head, so it is taken as one. A part of
// an encoded representation (Content-Encoding) or one marked
// no-transform is left alone.
func (c *Compressor) PreparePartial(h http.Header) {
	if hasNonEmpty(h["Content-Encoding"]) || hasToken(h["Cache-Control"], "no-transform") {
		return
	}
	ct := h["Content-Type"]
	if len(ct) == 0 {
		return
	}
	mt, _, _ := strings.Cut(ct[0], ";")
	if !strings.EqualFold(strings.TrimSpace(mt), "multipart/byteranges") {
		if !c.typeMatches(ct[0]) {
			return
		}
		if n, ok := completeLength(h["Content-Range"]); ok && n < c.minSize {
			return
		}
	}
	AddVary(h)
}

// completeLength is the complete length a Content-Range field gives
// ("bytes 0-9/5000": 5000); ok is false when it gives none ("*") or
// cannot be read.
func completeLength(cr []string) (n int64, ok bool) {
	if len(cr) != 1 {
		return 0, false
	}
	_, total, found := strings.Cut(cr[0], "/")
	if !found {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(total), 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
