package http1

import (
	"strings"
	"testing"
)

// TrimOWS is strings.Trim(v, " \t") without the cutset: the same result
// for every value, over all strings of up to four bytes from an alphabet
// with both whitespace bytes, other whitespace that is not OWS, and text.
func TestTrimOWSIsStringsTrim(t *testing.T) {
	alphabet := []string{" ", "\t", "a", "\r", "\v", "é"}
	var walk func(v string, depth int)
	walk = func(v string, depth int) {
		if got, want := TrimOWS(v), strings.Trim(v, " \t"); got != want {
			t.Errorf("TrimOWS(%q) = %q, want %q", v, got, want)
		}
		if depth == 4 {
			return
		}
		for _, c := range alphabet {
			walk(v+c, depth+1)
		}
	}
	walk("", 0)
}

func BenchmarkTrimOWS(b *testing.B) {
	for b.Loop() {
		TrimOWS(" text/html; charset=utf-8\t")
	}
}
