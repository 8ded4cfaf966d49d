package compress

import "strings"

// Negotiate picks the coding for a request whose Accept-Encoding field
// lines are acceptEncoding (all of them, as http.Header holds them). It
// returns "" for identity: when no line is sent, when the client accepts
// none of the offered codings with q > 0, or when it prefers identity by
// a strictly higher q-value. Among accepted codings the highest q wins;
// equal q-values go to the earlier coding in Options.Encodings. "*"
// stands for every coding the client does not name. "x-gzip" counts as
// gzip. An element with a malformed q-value is ignored.
//
// A client that refuses identity ("identity;q=0" or "*;q=0") and accepts
// nothing offered still gets "": a 406 for an encoding would break more
// clients than it serves.
func (c *Compressor) Negotiate(acceptEncoding []string) string {
	const unset = -1
	var q [numCodings]int
	for i := range q {
		q[i] = unset
	}
	star, identity := unset, unset
	for _, line := range acceptEncoding {
		for line != "" {
			var elem string
			elem, line, _ = strings.Cut(line, ",")
			token, params, _ := strings.Cut(elem, ";")
			token = strings.TrimSpace(token)
			if token == "" {
				continue
			}
			qv, ok := parseQ(params)
			if !ok {
				continue
			}
			switch {
			case token == "*":
				star = max(star, qv)
			case strings.EqualFold(token, "identity"):
				identity = max(identity, qv)
			default:
				if cd, ok := codingOf(token); ok {
					q[cd] = max(q[cd], qv)
				}
			}
		}
	}
	best, bestQ := "", 0
	for _, name := range c.encodings {
		cd, _ := codingOf(name)
		v := q[cd]
		if v == unset {
			v = star
		}
		if v > bestQ {
			best, bestQ = name, v
		}
	}
	if identity > bestQ {
		return ""
	}
	return best
}

// parseQ finds the q parameter among an element's parameters and returns
// it in thousandths (RFC 9110 12.4.2: "0" to "1" with up to three
// decimals); no q parameter is 1000. ok is false for a malformed weight.
func parseQ(params string) (q int, ok bool) {
	q = 1000
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, value, _ := strings.Cut(p, "=")
		if !strings.EqualFold(strings.TrimSpace(name), "q") {
			continue
		}
		return parseQValue(strings.TrimSpace(value))
	}
	return q, true
}

func parseQValue(v string) (int, bool) {
	if v == "" || len(v) > 5 || (v[0] != '0' && v[0] != '1') {
		return 0, false
	}
	whole := int(v[0] - '0')
	if len(v) == 1 {
		return whole * 1000, true
	}
	if v[1] != '.' {
		return 0, false
	}
	frac, scale := 0, 100
	for i := 2; i < len(v); i++ {
		d := v[i]
		if d < '0' || d > '9' {
			return 0, false
		}
		frac += int(d-'0') * scale
		scale /= 10
	}
	if whole == 1 && frac != 0 {
		return 0, false
	}
	return whole*1000 + frac, true
}
