package telemetry

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// This file is a minimal append-style JSON encoder for the access log. It
// exists because encoding/json allocates (reflection, interface boxing) and
// the access log runs once per proxied request.

const hexDigits = "0123456789abcdef"

// jsonSafe[b] is true for ASCII bytes that go into a JSON string verbatim.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

// appendString appends s as a quoted JSON string. It escapes what JSON
// requires (quote, backslash, control characters) plus U+2028 and U+2029,
// which break JavaScript consumers, and replaces invalid UTF-8 with U+FFFD
// (as \ufffd) so every line stays valid JSON whatever a client sent.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Skip 8 plain bytes at a time: most of a log line (paths, ids,
		// hosts) needs no escaping, and this is the encoder's hot loop.
		if i+8 <= len(s) && plain8(s, i) {
			i += 8
			continue
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const (
	lsb8 = 0x0101010101010101
	msb8 = 0x8080808080808080
)

// plain8 reports whether s[i:i+8] needs no escaping (printable ASCII, no
// quote, no backslash), testing the eight bytes at once (SWAR): a byte is
// flagged if it is below 0x20, equals a quote or backslash, or has its high
// bit set. Each "any byte" test is exact; the byte loads are combined into
// one by the compiler.
func plain8(s string, i int) bool {
	x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
		uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
	lt20 := x - lsb8*0x20 // high bit set in bytes < 0x20 (bytes >= 0x80 caught below)
	q := x ^ (lsb8 * '"')
	bs := x ^ (lsb8 * '\\')
	eqQ := q - lsb8
	eqBS := bs - lsb8
	return (lt20&^x|eqQ&^q|eqBS&^bs|x)&msb8 == 0
}

// appendKey appends `"key":`, preceded by a comma unless it is the first
// field. Keys are constants known to need no escaping.
func appendKey(dst []byte, key string) []byte {
	if dst[len(dst)-1] != '{' {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':')
}

// appendTime appends t in UTC as a quoted RFC 3339 timestamp with as many
// fractional digits as needed.
func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendMillis appends d as milliseconds with exactly three decimals
// (microsecond resolution, rounded), e.g. 12.345. Integer arithmetic keeps it
// exact and allocation-free where strconv.AppendFloat would round-trip a float.
func appendMillis(dst []byte, d time.Duration) []byte {
	// uint64 negation is right even for math.MinInt64.
	u := uint64(d)
	neg := d < 0
	if neg {
		u = -u
	}
	us := (u + 500) / 1000
	if neg && us != 0 {
		dst = append(dst, '-')
	}
	dst = strconv.AppendUint(dst, us/1000, 10)
	frac := us % 1000
	return append(dst, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}

// AppendJSONString appends s as a quoted JSON string, with the escaping
// rules of the access log: valid JSON whatever bytes s holds.
func AppendJSONString(dst []byte, s string) []byte { return appendString(dst, s) }
