package http1

import (
	"net/http"
	"strings"
)

// Error is a request that breaks the rules of HTTP/1.1: the status a
// server answers it with, and why.
type Error struct {
	Status int
	Reason string
}

func (e *Error) Error() string { return "malformed request: " + e.Reason }

func bad(reason string) *Error { return &Error{Status: http.StatusBadRequest, Reason: reason} }

// PrefaceHead is the part of the HTTP/2 connection preface with prior
// knowledge (RFC 9113 §3.4: PrefaceHead + "SM\r\n\r\n") that reads as an
// HTTP/1 request head.
const PrefaceHead = "PRI * HTTP/2.0\r\n\r\n"

// RequestHead is a parsed request head. Every string points into one copy
// of the head, made by Parse; Header and the value store are reused from
// one Parse to the next.
type RequestHead struct {
	Method string
	// Target is the request target as sent: origin-form ("/p?q"),
	// absolute-form ("http://h/p"), authority-form or "*".
	Target string
	// Minor is the HTTP/1 minor version: 0 or 1.
	Minor int
	// Host is the Host field ("" when absent, which HTTP/1.0 allows).
	Host   string
	Header http.Header
	// ContentLength is the declared body length; -1 when none is declared
	// (no body unless Chunked).
	ContentLength int64
	// Chunked: the body is chunked (Transfer-Encoding: chunked).
	Chunked bool
	// Close: the client asked to close after the response (Connection:
	// close, or HTTP/1.0 without keep-alive).
	Close bool
	// Upgrade: the client asked to switch protocols (Connection: upgrade).
	Upgrade bool
	// Expect holds the Expect field's values, if any: those of several
	// fields joined with ", ".
	Expect string
	// ConnTokens are the other field names the Connection field lists:
	// hop-by-hop fields a proxy removes.
	ConnTokens []string
	// Dropped counts the fields left out because their name holds an
	// underscore (see DropUnderscores).
	Dropped int

	// DropUnderscores leaves out fields whose name holds '_': to a CGI or
	// WSGI app "X_Forwarded_For" and "X-Forwarded-For" are one variable,
	// so such a field could pass for one the proxy sets (nginx drops them
	// too). Set by the caller; kept across Parse.
	DropUnderscores bool

	vals []string
}

// ParseRequestHead parses head, which ends with its empty line (see
// HeadEnd), into r. It enforces RFC 9112's framing rules the way a
// front-line proxy must, stricter than net/http where net/http is lenient
// to a smuggling risk: Content-Length with Transfer-Encoding, any
// Transfer-Encoding other than a single "chunked", Transfer-Encoding on
// HTTP/1.0, differing Content-Lengths, a missing or repeated Host on
// HTTP/1.1, obs-folded lines and control characters are all errors
// (*Error). Field names with an underscore are dropped when
// r.DropUnderscores is set.
func ParseRequestHead(head []byte, r *RequestHead) error {
	n := len(head)
	if n < 4 || string(head[n-4:]) != "\r\n\r\n" {
		return bad("head does not end with an empty line")
	}
	s := headString(head[:n-2])
	line, rest, _ := strings.Cut(s, "\r\n")
	if err := r.requestLine(line); err != nil {
		return err
	}
	return r.fields(rest)
}

func (r *RequestHead) requestLine(line string) error {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	switch {
	case !ok1 || !ok2:
		return bad("malformed request line")
	case !ValidToken(method):
		return bad("invalid method")
	case !ValidTarget(target):
		return bad("invalid request target")
	}
	switch proto {
	case "HTTP/1.1":
		r.Minor = 1
	case "HTTP/1.0":
		r.Minor = 0
	default:
		if len(proto) == 8 && strings.HasPrefix(proto, "HTTP/") && proto[6] == '.' {
			return &Error{Status: http.StatusHTTPVersionNotSupported, Reason: "HTTP version " + proto[5:] + " is not supported"}
		}
		return bad("malformed HTTP version")
	}
	r.Method, r.Target = method, target
	return nil
}

// ValidTarget reports whether t can be a request line's target: not
// empty, and no white space, control characters or fragment.
func ValidTarget(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	return true
}

func (r *RequestHead) fields(rest string) error {
	h := r.Header
	if h == nil {
		h = http.Header{}
		r.Header = h
	}
	clear(h)
	r.vals = r.vals[:0]
	r.ConnTokens = r.ConnTokens[:0]
	r.Host, r.ContentLength, r.Chunked, r.Close, r.Upgrade, r.Expect, r.Dropped = "", -1, false, false, false, "", 0
	hosts, lengths, codings := 0, 0, 0
	keepAlive := false
	fl := NewFieldLines(rest)
	for {
		k, v, ok, malformed := fl.Next()
		if malformed {
			return bad("malformed header line")
		}
		if !ok {
			break
		}
		switch k {
		case "Host":
			hosts++
			if hosts > 1 || !ValidHost(v) {
				return bad("invalid or repeated Host")
			}
			r.Host = v
			continue // as net/http, kept apart from the header map
		case "Content-Length":
			n, ok := ParseLength(v)
			switch {
			case !ok:
				return bad("invalid Content-Length")
			case lengths > 0 && (n != r.ContentLength || v != h["Content-Length"][0]):
				// "3" and "03" too: a repeat must be the same text, as
				// net/http requires, or a proxy behind that compares
				// text would see two lengths.
				return bad("differing Content-Lengths")
			case lengths > 0:
				continue // an identical repeat: kept once
			}
			lengths++
			r.ContentLength = n
		case "Transfer-Encoding":
			codings++
			if codings > 1 || !EqualFold(v, "chunked") {
				return bad("unsupported Transfer-Encoding " + quote(v))
			}
			r.Chunked = true
		case "Connection":
			keepAlive = r.connection(v) || keepAlive
		case "Expect":
			// Every field's values, as one list: an expectation in a
			// field before another's must not go unseen.
			switch {
			case r.Expect == "":
				r.Expect = v
			case v != "":
				r.Expect += ", " + v
			}
		}
		if r.DropUnderscores && strings.IndexByte(k, '_') >= 0 {
			r.Dropped++
			continue
		}
		r.vals = AddField(h, r.vals, k, v)
	}
	switch {
	case r.Chunked && lengths > 0:
		return bad("both Content-Length and Transfer-Encoding")
	case r.Chunked && r.Minor == 0:
		return bad("Transfer-Encoding in an HTTP/1.0 request")
	case r.Minor == 1 && hosts == 0:
		return bad("missing Host")
	}
	if r.Minor == 0 && !keepAlive {
		r.Close = true
	}
	return nil
}

// connection reads a Connection field; it returns whether it holds
// keep-alive.
func (r *RequestHead) connection(v string) bool {
	keepAlive := false
	for tok := range strings.SplitSeq(v, ",") {
		tok = TrimOWS(tok)
		switch {
		case tok == "":
		case EqualFold(tok, "close"):
			r.Close = true
		case EqualFold(tok, "keep-alive"):
			keepAlive = true
		case EqualFold(tok, "upgrade"):
			r.Upgrade = true
		default:
			r.ConnTokens = append(r.ConnTokens, tok)
		}
	}
	return keepAlive
}

func quote(v string) string {
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return `"` + v + `"`
}
