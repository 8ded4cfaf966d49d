package http1

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// ErrAmbiguousPath is wrapped by every error CleanPath returns. It means the
// gateway cannot know which resource the app behind it will resolve the path
// to, so it must not route the request at all; the caller answers 400.
var ErrAmbiguousPath = errors.New("ambiguous request path")

// CleanPath returns the path a request target's path means once dot segments
// are removed, for routing and forwarding.
//
// A prefix route such as "/public/" is only a boundary if the gateway routes
// on the path the app will resolve: "/public/%2e%2e/admin/x" matches the
// prefix as written but a file server behind it serves /admin/x. So dot
// segments are removed first, as RFC 3986 §5.2.4 does, and the caller routes
// and forwards the result.
//
// rawPath is the escaped path of an origin-form target: no query, starting
// with '/'. A segment is a dot segment when it decodes to "." or "..", whether
// or not its dots are percent-encoded ("%2e", "%2E", ".%2e", "%2e%2e", ...);
// ".." at the root stays at the root, and a trailing dot segment leaves a
// trailing slash ("/a/b/.." is "/a/"). The surviving segments are kept exactly
// as written, so "%2F" within a segment stays "%2F".
//
// When rawPath holds no dot segment it is returned as is, with changed false
// and without allocating, since every request passes through here.
//
// An error (wrapping ErrAmbiguousPath) is returned for a path whose meaning
// depends on the app's decoder: a segment that decodes to something holding
// '/' or '\\' together with a "." or ".." piece ("..%2fadmin", "..\\admin",
// "%2E%2E%2Fadmin" — an app that decodes before splitting, or splits on '\\',
// climbs out of the prefix; one that does not, does not), a path parameter
// holding an encoded '/' (";x%2Fy": a servlet container ends it at the next
// raw '/', an app that decodes first at the "%2F"), an encoded NUL, a raw
// control byte, a '%' not followed by two hex digits, and a path not
// starting with '/'.
func CleanPath(rawPath string) (clean string, changed bool, err error) {
	if rawPath == "" || rawPath[0] != '/' {
		return "", false, fmt.Errorf("%w: %q does not start with '/'", ErrAmbiguousPath, rawPath)
	}
	// First pass: validate every segment and note whether any is a dot
	// segment. It allocates nothing unless it fails.
	dotSegments := false
	for rest := rawPath[1:]; ; {
		seg, tail, more := strings.Cut(rest, "/")
		dots, err := scanSegment(seg)
		if err != nil {
			return "", false, err
		}
		if dots > 0 {
			dotSegments = true
		}
		if !more {
			break
		}
		rest = tail
	}
	if !dotSegments {
		return rawPath, false, nil
	}
	return removeDotSegments(rawPath), true, nil
}

// removeDotSegments is RFC 3986 §5.2.4 over a path already validated by
// scanSegment. Each kept segment is appended as "/" + segment, so ".." is a
// cut back to the last '/', which never goes above the root.
func removeDotSegments(rawPath string) string {
	out := make([]byte, 0, len(rawPath))
	lastWasDot := false
	for rest := rawPath[1:]; ; {
		seg, tail, more := strings.Cut(rest, "/")
		dots, _ := scanSegment(seg) // cannot fail: CleanPath's first pass passed
		switch dots {
		case 0:
			out = append(out, '/')
			out = append(out, seg...)
		case 2:
			if i := bytes.LastIndexByte(out, '/'); i >= 0 {
				out = out[:i]
			}
		}
		lastWasDot = dots > 0
		if !more {
			break
		}
		rest = tail
	}
	if lastWasDot || len(out) == 0 {
		// "/a/.." names the directory "/a/", not the file "/a".
		out = append(out, '/')
	}
	return string(out)
}

// scanSegment validates one escaped segment (no raw '/') and reports whether
// it is a dot segment: dots is 1 for ".", 2 for "..", 0 otherwise.
//
// It decodes as it goes and splits the decoded bytes into pieces at '/',
// '\\' and ';', because those are the separators some app behind the gateway
// may split on after decoding (';' starts a servlet path parameter, so a
// Java app reads "..;x" as ".."); a "." or ".." piece behind such a
// separator is a dot segment to that app and not to the gateway, which is
// the ambiguity refused.
//
// A parameter (from a raw ';') holding an encoded '/' is refused too:
// servlet containers and Spring take the parameter off before decoding,
// to the next raw '/', so "/;x%2Fy/admin" is /admin to them, while the
// gateway routes the decoded path ("/;x/y/admin", /y/admin without its
// parameter), as an app that decodes first reads it.
func scanSegment(seg string) (dots int, err error) {
	pieceLen, pieceDots := 0, 0 // a piece is a dot piece when all of it, 1 or 2 bytes, is '.'
	separated, dotPiece, param := false, false, false
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		switch {
		case c == '%':
			if len(seg)-i < 3 || !isHex(seg[i+1]) || !isHex(seg[i+2]) {
				return 0, fmt.Errorf("%w: %q is not a percent-escape", ErrAmbiguousPath, seg[i:min(i+3, len(seg))])
			}
			c = unhex(seg[i+1])<<4 | unhex(seg[i+2])
			if c == 0 {
				return 0, fmt.Errorf("%w: encoded NUL %q", ErrAmbiguousPath, seg[i:i+3])
			}
			if c == '/' && param {
				return 0, fmt.Errorf("%w: segment %q has a parameter holding an encoded '/'", ErrAmbiguousPath, seg)
			}
			i += 2
		case c == ';':
			param = true
		case c < 0x20 || c == 0x7f:
			return 0, fmt.Errorf("%w: control byte 0x%02x", ErrAmbiguousPath, c)
		}
		if c == '/' || c == '\\' || c == ';' {
			if pieceLen > 0 && pieceLen <= 2 && pieceDots == pieceLen {
				dotPiece = true
			}
			separated = true
			pieceLen, pieceDots = 0, 0
			continue
		}
		pieceLen++
		if c == '.' {
			pieceDots++
		}
	}
	isDot := pieceLen > 0 && pieceLen <= 2 && pieceDots == pieceLen
	if !separated {
		if isDot {
			return pieceLen, nil
		}
		return 0, nil
	}
	if dotPiece || isDot {
		return 0, fmt.Errorf("%w: segment %q decodes to a dot segment beside '/', '\\' or ';'", ErrAmbiguousPath, seg)
	}
	return 0, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	default:
		return c - 'a' + 10
	}
}

// MergeSlashes replaces each run of slashes in p with one: how routes
// are matched (nginx's merge_slashes), which CleanPath leaves to them,
// as the path sent on keeps its slashes. p itself when it has no "//".
func MergeSlashes(p string) string {
	if !strings.Contains(p, "//") {
		return p
	}
	b := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 && p[i-1] == '/' {
			continue
		}
		b = append(b, p[i])
	}
	return string(b)
}

// RoutePath is a request's decoded path as routes are matched against
// it: its slashes merged (MergeSlashes) and each segment's parameters
// (from ';' to the segment's end) left out, as servlet containers and
// Spring read "/admin;jsessionid=1/x" as "/admin/x". p itself when it
// has neither.
func RoutePath(p string) string {
	p = MergeSlashes(p)
	if strings.IndexByte(p, ';') < 0 {
		return p
	}
	b := make([]byte, 0, len(p))
	for inParam, i := false, 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '/':
			inParam = false
		case c == ';':
			inParam = true
		}
		if !inParam {
			b = append(b, p[i])
		}
	}
	// "/a/;x/b" leaves "/a//b".
	return MergeSlashes(string(b))
}

// RouteHost is a request's host as routes are matched against it:
// without its port, an IPv6 address's brackets (with or without a
// port), or a trailing dot ("example.com." is the absolute spelling of
// "example.com"). A host with more colons than a port takes
// ("example.com:80:1") is what comes before the first one (after "]" in
// brackets), as nginx and Express read it: an app that reads it so
// must not be reached past the host's route.
func RouteHost(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else if len(host) > 1 && host[0] == '[' {
		if end := strings.IndexByte(host, ']'); end > 0 {
			host = host[1:end]
		}
	} else if _, err := netip.ParseAddr(host); err != nil {
		// An IPv6 address without its brackets keeps its colons.
		host, _, _ = strings.Cut(host, ":")
	}
	return strings.TrimSuffix(host, ".")
}
