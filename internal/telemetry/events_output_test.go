package telemetry

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// An exit event carries the last lines the process wrote, and a line of
// an instance's output may be ~96 KiB (it is cut at 64 KiB plus one read
// of the pipe). Twenty such lines made an events.log line longer than
// ReadEvents (and `gatehouse logs -f`'s stream reader) take: the exit
// was skipped, and diagnose, offline or live, saw no crash. Emit cuts
// long output lines so that every event it writes can be read back.
func TestReadEventsExitWithLongOutput(t *testing.T) {
	tests := []struct {
		name string
		line string
	}{
		{"ascii", strings.Repeat("x", 96<<10)},
		{"escaped", strings.Repeat("\x01", 16<<10)}, // six bytes each in JSON
		{"multibyte", strings.Repeat("é", 48<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "events.log")
			w := NewAsyncWriter(path, WriterOptions{})
			evs := NewEvents(w, 10)
			out := make([]string, 20)
			for i := range out {
				out[i] = tt.line
			}
			evs.Emit(Event{Time: at(1), App: "web", Instance: "web-1", Type: EventExit, PID: 4242, ExitCode: intp(1), Output: out})
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := ReadEvents(path, at(0))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Type != EventExit || len(got[0].Output) != 20 {
				t.Fatalf("ReadEvents = %d events, want the exit with its 20 output lines", len(got))
			}
			for _, l := range got[0].Output {
				if !utf8.ValidString(l) || !strings.HasPrefix(tt.line, strings.TrimSuffix(l, outputCut)) {
					t.Fatalf("output line %.40q… is not a cut of the line written", l)
				}
			}
			if out[0] != tt.line {
				t.Error("emit changed the caller's output slice")
			}
		})
	}
}
