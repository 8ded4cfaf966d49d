package telemetry

import (
	"strings"
	"testing"
)

// ReadLines hands on every line up to MaxLine bytes, whatever its ending
// (LF, CRLF, none at the end), and skips a longer one.
func TestReadLinesAtTheLimit(t *testing.T) {
	t.Parallel()
	at, over := strings.Repeat("a", MaxLine), strings.Repeat("b", MaxLine+1)
	for _, tc := range []struct {
		name, in string
		want     []int // the lengths of the lines handed on
	}{
		{"LF", at + "\n" + over + "\nz\n", []int{MaxLine, 1}},
		{"CRLF", at + "\r\n" + over + "\r\nz\r\n", []int{MaxLine, 1}},
		{"no ending at the end", "z\n" + at, []int{1, MaxLine}},
		{"too long, no ending at the end", "z\n" + over, []int{1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			if err := ReadLines(strings.NewReader(tc.in), func(l []byte) { got = append(got, len(l)) }); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("lines %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("lines %v, want %v", got, tc.want)
				}
			}
		})
	}
}
