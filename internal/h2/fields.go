package h2

import (
	"net/http"
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// commonFields are field names most requests and answers carry, whose
// canonical and wire (lower-case) forms are looked up, not made.
var commonFields = []string{
	"accept", "accept-charset", "accept-encoding", "accept-language", "accept-ranges",
	"access-control-allow-origin", "age", "authorization", "cache-control", "content-disposition",
	"content-encoding", "content-language", "content-length", "content-location", "content-range",
	"content-type", "cookie", "date", "etag", "expect", "expires", "forwarded", "from", "host",
	"if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since",
	"last-modified", "link", "location", "max-forwards", "origin", "priority", "proxy-authenticate",
	"proxy-authorization", "range", "referer", "refresh", "retry-after", "server", "set-cookie",
	"strict-transport-security", "te", "trailer", "traceparent", "tracestate", "transfer-encoding",
	"user-agent", "vary", "via", "www-authenticate", "x-forwarded-for", "x-forwarded-host",
	"x-forwarded-proto", "x-request-id", "upgrade-insecure-requests", "sec-fetch-dest",
	"sec-fetch-mode", "sec-fetch-site", "sec-fetch-user", "sec-ch-ua", "sec-ch-ua-mobile",
	"sec-ch-ua-platform", "x-content-type-options", "x-frame-options", "content-security-policy",
	"referrer-policy", "keep-alive", "connection", "upgrade", "proxy-connection",
}

// The tables built from commonFields: read only once made.
var (
	canonicalOf = func() map[string]string {
		m := make(map[string]string, len(commonFields))
		for _, f := range commonFields {
			m[f] = textproto.CanonicalMIMEHeaderKey(f)
		}
		return m
	}()
	lowerOf = func() map[string]string {
		m := make(map[string]string, len(commonFields))
		for _, f := range commonFields {
			m[textproto.CanonicalMIMEHeaderKey(f)] = f
		}
		return m
	}()
)

// fieldCache bounds a connection's own cache of names beyond the common
// ones: a client cannot grow it without end.
const fieldCache = 64

// canonical is a received field name's canonical form. The reader
// goroutine's.
func (c *conn) canonical(name string) string {
	if k, ok := canonicalOf[name]; ok {
		return k
	}
	if k, ok := c.canon[name]; ok {
		return k
	}
	k := textproto.CanonicalMIMEHeaderKey(name)
	if len(c.canon) < fieldCache {
		if c.canon == nil {
			c.canon = map[string]string{}
		}
		c.canon[name] = k
	}
	return k
}

// lowerName is a field name as HTTP/2 sends it.
func lowerName(k string) string {
	if l, ok := lowerOf[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

// appendFields appends the fields of h an HTTP/2 message may carry, as
// HTTP/2 sends them. The strings are h's: the fields are h as it is now,
// whatever becomes of its slices later (the answer's head may be pooled
// and reused once the handler is done with it). The bool says whether h
// holds trailers under http.TrailerPrefix.
func appendFields(dst []hpack.HeaderField, h http.Header) ([]hpack.HeaderField, bool) {
	var prefixed bool
	for k, vs := range h {
		if len(vs) == 0 {
			continue
		}
		// Before the name's check: the prefix's colon is no token
		// character, and a prefixed trailer is no invalid field.
		if strings.HasPrefix(k, http.TrailerPrefix) {
			prefixed = true
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		lk := lowerName(k)
		switch lk {
		case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
			continue
		}
		never := neverIndexed(lk)
		for _, v := range vs {
			if httpguts.ValidHeaderFieldValue(v) {
				dst = append(dst, hpack.HeaderField{Name: lk, Value: v, Sensitive: never})
			}
		}
	}
	return dst, prefixed
}

// neverIndexed says whether an answer's field is sent as never indexed
// (RFC 7541 §6.2.3): cookies, as §7.1.3 advises, so that no proxy on
// the way keeps one in a table of its own.
func neverIndexed(name string) bool { return name == "set-cookie" }

var _ http.ResponseWriter = (*responseWriter)(nil)
var _ http.Flusher = (*responseWriter)(nil)
