package config

import (
	"errors"
	"math"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Numbers are read as YAML 1.2's core schema reads them, which is how an
// editor reads the file it checks against the JSON Schema (schema/).
// yaml.v3 also takes YAML 1.1's forms: "1_000" and "0b11", which a 1.2
// reader takes for text, and "010" as eight, which is ten in 1.2. A key
// must mean what the editor showed, so those are refused or read as 1.2
// reads them. Where an integer goes, a number with a fraction or an
// exponent is taken when it is whole ("2.0", "1e3"), as the JSON Schema
// takes it: to a JSON reader it is the same number as "2".
var (
	coreDecimal = regexp.MustCompile(`^[-+]?[0-9]+$`)
	coreOctal   = regexp.MustCompile(`^0o[0-7]+$`)
	coreHex     = regexp.MustCompile(`^0x[0-9a-fA-F]+$`)
	coreFloat   = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)
)

var (
	// errYAML11Number is a number only YAML 1.1 reads as one.
	errYAML11Number = errors.New("not a number in YAML 1.2")
	// errNotWhole is a number with a fraction where an integer goes.
	errNotWhole = errors.New("not a whole number")
	// errNumberRange is a number too large for its key.
	errNumberRange = errors.New("out of range")
)

// coreInt reads s as a YAML 1.2 integer, or a whole number.
func coreInt(s string) (int64, error) {
	var i int64
	var err error
	switch {
	case coreDecimal.MatchString(s):
		i, err = strconv.ParseInt(s, 10, 64)
	case coreOctal.MatchString(s):
		i, err = strconv.ParseInt(s[2:], 8, 64)
	case coreHex.MatchString(s):
		i, err = strconv.ParseInt(s[2:], 16, 64)
	case coreFloat.MatchString(s):
		f, _ := strconv.ParseFloat(s, 64)
		switch {
		case f != math.Trunc(f):
			return 0, errNotWhole
		case f < math.MinInt64 || f >= math.MaxInt64:
			return 0, errNumberRange
		}
		return int64(f), nil
	case isSpecialFloat(s):
		return 0, errNotWhole
	default:
		return 0, errYAML11Number
	}
	if err != nil {
		return 0, errNumberRange
	}
	return i, nil
}

// coreNumber reads s as a YAML 1.2 number; infinity and NaN are none a
// config can use.
func coreNumber(s string) (float64, error) {
	if coreFloat.MatchString(s) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, errNumberRange
		}
		return f, nil
	}
	if isSpecialFloat(s) {
		return 0, errNumberRange
	}
	i, err := coreInt(s)
	return float64(i), err
}

// isSpecialFloat reports YAML 1.2's spellings of infinity and NaN.
func isSpecialFloat(s string) bool {
	switch strings.TrimLeft(s, "+-") {
	case ".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN":
		return true
	}
	return false
}

// isNumberNode reports whether yaml.v3 took n for a number (YAML 1.1's
// forms included): a plain scalar, not text.
func isNumberNode(n *yaml.Node) bool {
	t := n.ShortTag()
	return t == "!!int" || t == "!!float"
}

// numberText is n's value as the text the written-form parsers
// (ParseSize, ParseDuration, ParseStatusRange, decodeThreshold) read:
// for a YAML 1.2 number, the number in decimal ("0x400" is "1024", "1e3"
// "1000", "200.0" "200"), as the editor read it; otherwise the text as
// written.
func numberText(n *yaml.Node) string {
	if !isNumberNode(n) {
		return n.Value
	}
	if i, err := coreInt(n.Value); err == nil {
		return strconv.FormatInt(i, 10)
	}
	if f, err := coreNumber(n.Value); err == nil {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return n.Value
}
