package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses "30s", "1m30s", "250ms" or "0". A bare non-zero
// number is rejected because "30" could mean seconds or milliseconds and a
// silent guess would be wrong by a factor of 1000.
func ParseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if isNumber(s) {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("%q needs a unit, e.g. 30s", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q, want e.g. 30s, 1m30s or 250ms", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q must not be negative", s)
	}
	return Duration(d), nil
}

// isNumber reports whether s is a plain decimal number, signed or not.
func isNumber(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if s == "" {
		return false
	}
	for _, r := range s {
		if (r < '0' || r > '9') && r != '.' {
			return false
		}
	}
	return true
}

// sizeUnits are the suffixes ParseSize accepts, lower-cased.
var sizeUnits = map[string]float64{
	"":    1,
	"b":   1,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
}

// ParseSize parses a byte count: "1024", "10MB", "512MiB", "1.5GiB". KB, MB
// and GB are powers of 1000 and KiB, MiB, GiB powers of 1024, as their
// names say; units are case-insensitive.
func ParseSize(s string) (Size, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool {
		return (r < '0' || r > '9') && r != '.' && r != '-' && r != '+'
	})
	if i < 0 {
		i = len(s)
	}
	num, unit := s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	mult, ok := sizeUnits[unit]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil {
		return 0, fmt.Errorf("invalid size %q, want e.g. 512MiB, 10MB or 1024", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("size %q must not be negative", s)
	}
	n := f * mult
	if n >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	if n != math.Trunc(n) {
		return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
	}
	return Size(n), nil
}

// ParseStatusRange parses "200-399" or "500". Codes must be within 100-599,
// the range HTTP defines, so a typo like "20-399" is caught.
func ParseStatusRange(s string) (StatusRange, error) {
	s = strings.TrimSpace(s)
	lo, hi, isRange := strings.Cut(s, "-")
	min, err1 := strconv.Atoi(strings.TrimSpace(lo))
	max, err2 := min, error(nil)
	if isRange {
		max, err2 = strconv.Atoi(strings.TrimSpace(hi))
	}
	if err1 != nil || err2 != nil {
		return StatusRange{}, fmt.Errorf("invalid status range %q, want e.g. \"200-399\" or \"500\"", s)
	}
	r := StatusRange{Min: min, Max: max}
	return r, r.check()
}

// check reports a range outside 100-599 or upside down.
func (r StatusRange) check() error {
	if r.Min < 100 || r.Max > 599 || r.Min > 599 || r.Max < 100 {
		return fmt.Errorf("status range %s must be within 100-599", r)
	}
	if r.Min > r.Max {
		return fmt.Errorf("status range %s: %d is greater than %d", r, r.Min, r.Max)
	}
	return nil
}

// ShellCommand is the argv that runs s with sh -c, the way a Procfile line
// or a command string is run.
func ShellCommand(s string) Command { return Command{"sh", "-c", s} }

// String formats d like time.Duration ("1m30s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as ParseDuration reads it, so JSON and flags show
// "30s" rather than nanoseconds.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads d with ParseDuration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// String formats s in the largest binary unit that divides it ("512MiB"),
// else in bytes.
func (s Size) String() string {
	for _, u := range []struct {
		name string
		n    Size
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && s%u.n == 0 {
			return strconv.FormatInt(int64(s/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalText writes s as ParseSize reads it.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads s with ParseSize.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// String formats r as "200-399", or "500" for a single code.
func (r StatusRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return strconv.Itoa(r.Min) + "-" + strconv.Itoa(r.Max)
}

// MarshalText writes r as ParseStatusRange reads it.
func (r StatusRange) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads r with ParseStatusRange.
func (r *StatusRange) UnmarshalText(b []byte) error {
	v, err := ParseStatusRange(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
