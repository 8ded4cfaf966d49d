package static

import "strings"

// acceptQ is what an Accept-Encoding header says of the codings: each
// one's q in thousandths, -1 when not named.
type acceptQ struct {
	star     int
	identity int
	named    [4]int // indexed by codingIndex
}

// codingIndex is a coding's slot in acceptQ.named; -1 for one not looked
// for.
func codingIndex(name string) int {
	switch {
	case strings.EqualFold(name, "br"):
		return 0
	case strings.EqualFold(name, "zstd"):
		return 1
	case strings.EqualFold(name, "gzip"), strings.EqualFold(name, "x-gzip"):
		return 2
	}
	return -1
}

// parseAcceptEncoding reads an Accept-Encoding value (RFC 9110 12.5.3).
// An element with a malformed q is ignored, so nothing the client may not
// understand is chosen on its account.
func parseAcceptEncoding(v string) acceptQ {
	a := acceptQ{star: -1, identity: -1, named: [4]int{-1, -1, -1, -1}}
	for v != "" {
		var elem string
		elem, v, _ = strings.Cut(v, ",")
		name, params, _ := strings.Cut(elem, ";")
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		q := 1000
		ok := true
		for params != "" {
			var p string
			p, params, _ = strings.Cut(params, ";")
			p = strings.TrimSpace(p)
			if len(p) >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=' {
				q, ok = parseQ(p[2:])
			}
		}
		if !ok {
			continue
		}
		switch {
		case name == "*":
			a.star = q
		case strings.EqualFold(name, "identity"):
			a.identity = q
		default:
			if i := codingIndex(name); i >= 0 {
				a.named[i] = max(a.named[i], q)
			}
		}
	}
	return a
}

// parseQ reads a qvalue: "0", "1", "0.5", "1.000", in thousandths.
func parseQ(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	whole := int(s[0] - '0')
	s = s[1:]
	if s == "" {
		return whole * 1000, true
	}
	if s[0] != '.' || len(s) > 4 {
		return 0, false
	}
	frac, scale := 0, 100
	for i := 1; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		frac += int(c-'0') * scale
		scale /= 10
	}
	if whole == 1 && frac != 0 {
		return 0, false
	}
	return whole*1000 + frac, true
}

// q is the client's weight for c: its own, else "*"'s, else 0.
func (a *acceptQ) q(c *coding) int {
	if q := a.named[codingIndex(c.name)]; q >= 0 {
		return q
	}
	if a.star >= 0 {
		return a.star
	}
	return 0
}

// order returns the codings worth looking for, best first: by the client's
// q, ties broken by the configured order; none the client rates below an
// identity it names explicitly. It fills buf.
func order(codings []coding, header string, buf []*coding) []*coding {
	if len(codings) == 0 || header == "" {
		return buf[:0]
	}
	a := parseAcceptEncoding(header)
	out := buf[:0]
	for i := range codings {
		c := &codings[i]
		q := a.q(c)
		if q <= 0 || q < a.identity {
			continue
		}
		// Insertion keeps configured order among equal weights.
		out = append(out, c)
		for i := len(out) - 1; i > 0 && a.q(out[i-1]) < q; i-- {
			out[i], out[i-1] = out[i-1], out[i]
		}
	}
	return out
}
