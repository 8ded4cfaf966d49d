package gateway

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
)

// parse reads a request head into the connection's reused request. It is
// strict: it accepts only plain HTTP/1.1 requests with an origin-form
// target, one Host, no body or one of declared length, and well-formed
// header lines; for anything else it returns false and the connection
// goes to net/http, which serves the unusual and rejects the malformed.
//
// The head is copied into one string, and every string of the request
// points into it: one allocation per request, and nothing that outlives
// the request aliases the connection's buffers.
func (fc *frontConn) parse(head []byte) bool {
	s := string(head[:len(head)-2]) // without the final empty line
	line, rest, _ := strings.Cut(s, "\r\n")
	method, target, proto, ok := splitRequestLine(line)
	if !ok || proto != "HTTP/1.1" || !validToken(method) || !fc.setTarget(target) {
		return false
	}
	r := fc.req
	h := r.Header
	clear(h)
	fc.vals = fc.vals[:0]
	fc.hop = fc.hop[:0]
	fc.closeAfter = false
	fc.requestID = ""
	host, hasHost := "", false
	var length int64
	hasLength := false
	fields := fieldLines{rest}
	for {
		k, v, ok, bad := fields.next()
		if bad {
			return false
		}
		if !ok {
			break
		}
		switch k {
		case "Host":
			if hasHost || !validHost(v) {
				return false
			}
			host, hasHost = v, true
			continue // net/http keeps it in Request.Host only
		case "Content-Length":
			n, ok := parseLength(v)
			if hasLength || !ok {
				return false
			}
			length, hasLength = n, true
		case "Transfer-Encoding", "Expect", "Upgrade":
			return false
		case "Connection":
			if !fc.connectionTokens(v) {
				return false
			}
		case "X-Request-Id":
			if fc.requestID == "" {
				fc.requestID = v
			}
		}
		fc.vals = addField(h, fc.vals, k, v)
	}
	if !hasHost {
		return false
	}
	r.Method = method
	r.Host = host
	r.RequestURI = target
	r.RemoteAddr = fc.remote
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.Close = fc.closeAfter
	r.ContentLength = length
	r.GetBody = nil
	r.Trailer = nil
	fc.body.n = length
	if length > 0 {
		r.Body = &fc.body
	} else {
		r.Body = http.NoBody
	}
	return true
}

func splitRequestLine(line string) (method, target, proto string, ok bool) {
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	return method, target, proto, ok1 && ok2
}

// setTarget sets the request URL from an origin-form target ("/p?q"),
// the only form a gateway's clients send. A path with escapes goes through
// url.ParseRequestURI, as net/http would.
func (fc *frontConn) setTarget(target string) bool {
	if target == "" || target[0] != '/' {
		return false
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c == 0x7f || c == '#' {
			return false
		}
	}
	path, query, _ := strings.Cut(target, "?")
	if strings.IndexByte(path, '%') >= 0 {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return false
		}
		fc.url = *u
		return true
	}
	fc.url = url.URL{Path: path, RawQuery: query}
	return true
}

// connectionTokens reads a Connection header: close ends the connection
// after the response, other names are hop-by-hop headers not forwarded;
// upgrade is for the fallback server.
func (fc *frontConn) connectionTokens(v string) bool {
	for tok := range strings.SplitSeq(v, ",") {
		tok = textproto.TrimString(tok)
		switch {
		case tok == "":
		case strings.EqualFold(tok, "close"):
			fc.closeAfter = true
		case strings.EqualFold(tok, "keep-alive"):
		case strings.EqualFold(tok, "upgrade"):
			return false
		default:
			fc.hop = append(fc.hop, tok)
		}
	}
	return true
}

// validHost accepts the characters of a host, an IP literal and a port;
// anything else is net/http's to reject.
func validHost(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(tokenChars[c] || c == ':' || c == '[' || c == ']') || c == '|' || c == '`' || c == '^' || c == '#' {
			return false
		}
	}
	return true
}
