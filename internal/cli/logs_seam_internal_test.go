package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/admin"
)

// `logs -f` opens the stream before it asks for the backlog: the lines
// published in between come on the stream and may be in the backlog
// too. Each is printed once, and no line of the stream that the backlog
// did not print is dropped, whatever its time: a line is stamped when
// its first byte arrives, so a line another instance finished later, or
// one still being written when the backlog was read, comes on the
// stream with a time before the backlog's last.
func TestFollowPrintsEachLineOnceAcrossTheSeam(t *testing.T) {
	t.Parallel()
	at := func(ms int) time.Time { return time.Date(2030, 1, 2, 3, 4, 5, ms*1e6, time.UTC) }
	rec := func(ms int, inst, line string) logRecord {
		return logRecord{Time: at(ms), App: "web", Instance: inst, Stream: admin.StreamOutput, Line: line}
	}
	for _, tc := range []struct {
		name    string
		lines   int // --lines
		backlog []logRecord
		stream  []logRecord
		want    []string
	}{
		{
			name:    "stream repeats the backlog's last lines",
			lines:   10,
			backlog: []logRecord{rec(1, "web-1", "a"), rec(2, "web-1", "b")},
			stream:  []logRecord{rec(2, "web-1", "b"), rec(3, "web-1", "c")},
			want:    []string{"web-1 | a", "web-1 | b", "web-1 | c"},
		},
		{
			name:    "another instance's line stamped before the backlog's last",
			lines:   10,
			backlog: []logRecord{rec(1, "web-1", "a"), rec(5, "web-2", "b")},
			stream:  []logRecord{rec(5, "web-2", "b"), rec(3, "web-1", "finished after the backlog"), rec(6, "web-1", "c")},
			want:    []string{"web-1 | a", "web-2 | b", "web-1 | finished after the backlog", "web-1 | c"},
		},
		{
			name:    "two equal lines of one write, both in the backlog",
			lines:   10,
			backlog: []logRecord{rec(1, "web-1", "x"), rec(1, "web-1", "x")},
			stream:  []logRecord{rec(1, "web-1", "x"), rec(1, "web-1", "x"), rec(2, "web-1", "y")},
			want:    []string{"web-1 | x", "web-1 | x", "web-1 | y"},
		},
		{
			name:    "a line older than the --lines shown is not shown out of order",
			lines:   1,
			backlog: []logRecord{rec(2, "web-1", "b")},
			stream:  []logRecord{rec(1, "web-1", "a"), rec(2, "web-1", "b"), rec(3, "web-1", "c")},
			want:    []string{"web-1 | b", "web-1 | c"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			for _, r := range tc.backlog {
				printRecord(&out, r, false)
			}
			var sse strings.Builder
			for _, r := range tc.stream {
				fmt.Fprintf(&sse, "event: log\ndata: {\"time\":%q,\"app\":%q,\"instance\":%q,\"line\":%q}\n\n",
					r.Time.Format(time.RFC3339Nano), r.App, r.Instance, r.Line)
			}
			sse.WriteString("event: end\ndata: {}\n\n")
			seen := newPrinted(tc.backlog, tc.lines)
			if err := printStream(strings.NewReader(sse.String()), &out, false, false, seen.skip); err != nil {
				t.Fatal(err)
			}
			var got []string
			for l := range strings.SplitSeq(strings.TrimSpace(out.String()), "\n") {
				_, text, _ := strings.Cut(l, " ")
				got = append(got, text)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("lines printed (-want +got):\n%s", diff)
			}
		})
	}
}
