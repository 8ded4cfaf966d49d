package telemetry

import (
	"bytes"
	"encoding/json"
	"math"
	"path/filepath"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// nasty strings a client controls (path, host, X-Request-Id) or an error
// message carries.
var nastyStrings = map[string]string{
	"quote and backslash": `say "hi" \ bye \"`,
	"control chars":       "a\x00b\x01c\x1fd\x7fe",
	"whitespace escapes":  "l1\nl2\r\tx\b\f",
	"invalid utf8":        "ok\xffbad\xfe\xe2\x82trunc",
	"line separators":     "a\u2028b\u2029c",
	"multibyte":           "héllo 世界 😀",
	"html":                "<script>&amp;</script>",
	"json injection":      `","status":999,"x":"`,
	"empty":               "",
}

func decode(t *testing.T, line []byte) map[string]any {
	t.Helper()
	if !bytes.HasSuffix(line, []byte("}\n")) {
		t.Fatalf("line does not end in }\\n: %q", line)
	}
	if bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("line has embedded newlines: %q", line)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, line)
	}
	return m
}

// viaStdlib is what encoding/json makes of s after a round trip: the oracle
// for escaping, including invalid UTF-8 becoming U+FFFD per bad byte.
func viaStdlib(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendAccessJSON(t *testing.T) {
	ts := time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	tests := []struct {
		name  string
		entry AccessEntry
		want  map[string]any
	}{
		{
			name: "full entry",
			entry: AccessEntry{
				Time: ts, RequestID: "req-1", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", App: "web", Instance: "web-1", Method: "POST",
				Host: "example.com", Path: "/api/x?y=1", Status: 502, Bytes: 1234,
				Duration: 12345678 * time.Nanosecond, Upstream: 1500 * time.Microsecond,
				Attempts: 2, Cause: "connect_refused", RetriedCauses: []string{"stale_connection", "connect_refused"},
				ConnReused: true, Client: "10.0.0.1:5555", Detail: "dial tcp: connection refused",
			},
			want: map[string]any{
				"time": "2026-11-21T09:00:00.123456789Z", "request_id": "req-1", "app": "web",
				"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "instance": "web-1", "method": "POST", "host": "example.com", "path": "/api/x?y=1",
				"status": 502.0, "bytes": 1234.0, "duration_ms": 12.346, "upstream_ms": 1.5,
				"attempts": 2.0, "cause": "connect_refused",
				"conn_reused": true, "client": "10.0.0.1:5555", "detail": "dial tcp: connection refused",
				"retried_causes": []any{"stale_connection", "connect_refused"},
			},
		},
		{
			name:  "zero entry omits trace_id, retried_causes and detail",
			entry: AccessEntry{},
			want: map[string]any{
				"time": "0001-01-01T00:00:00Z", "request_id": "", "app": "", "instance": "",
				"method": "", "host": "", "path": "", "status": 0.0, "bytes": 0.0,
				"duration_ms": 0.0, "upstream_ms": 0.0, "attempts": 0.0, "cause": "",
				"conn_reused": false, "client": "",
			},
		},
	}
	for name, s := range nastyStrings {
		want := viaStdlib(t, s)
		tests = append(tests, struct {
			name  string
			entry AccessEntry
			want  map[string]any
		}{
			name: "nasty " + name,
			entry: AccessEntry{
				Time: ts, RequestID: s, App: "web", Host: s, Path: s, Status: 200,
				Cause: "", RetriedCauses: []string{s}, Client: s, Detail: s,
			},
			want: map[string]any{
				"time": "2026-11-21T09:00:00.123456789Z", "request_id": want, "app": "web",
				"instance": "", "method": "", "host": want, "path": want, "status": 200.0,
				"bytes": 0.0, "duration_ms": 0.0, "upstream_ms": 0.0, "attempts": 0.0, "cause": "",
				"retried_causes": []any{want}, "conn_reused": false, "client": want,
				"detail": func() any {
					if s == "" {
						return nil
					}
					return want
				}(),
			},
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.want {
				if v == nil {
					delete(tt.want, k)
				}
			}
			prefix := []byte("keep:")
			out := AppendAccessJSON(prefix, &tt.entry)
			if !bytes.HasPrefix(out, prefix) {
				t.Fatalf("AppendAccessJSON clobbered dst: %q", out)
			}
			got := decode(t, out[len(prefix):])
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decoded line (-want +got):\n%s\nline: %s", diff, out)
			}
		})
	}
}

func TestAppendAccessJSONKeyOrder(t *testing.T) {
	e := AccessEntry{
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), RequestID: "r", TraceID: "t", App: "a", Instance: "a-1",
		Method: "GET", Host: "h", Path: "/", Status: 200, Bytes: 5, Duration: time.Millisecond,
		Upstream: 0, Attempts: 1, RetriedCauses: []string{"stale_connection"}, Client: "c", Detail: "d",
	}
	want := `{"time":"2026-01-02T03:04:05Z","request_id":"r","trace_id":"t","app":"a","instance":"a-1","method":"GET",` +
		`"host":"h","path":"/","status":200,"bytes":5,"duration_ms":1.000,"upstream_ms":0.000,` +
		`"attempts":1,"cause":"","retried_causes":["stale_connection"],"conn_reused":false,"client":"c","detail":"d"}` + "\n"
	if diff := cmp.Diff(want, string(AppendAccessJSON(nil, &e))); diff != "" {
		t.Errorf("line (-want +got):\n%s", diff)
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`q"b\`, `"q\"b\\"`},
		{"\x00\x1f\n\r\t", `"\u0000\u001f\n\r\t"`},
		{"a\xffb", `"a\ufffdb"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"é😀", `"é😀"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := string(appendString(nil, tt.in)); got != tt.want {
				t.Errorf("appendString(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// TestPlain8 checks the SWAR fast path against the byte table for every byte
// value at every position of the 8-byte window.
func TestPlain8(t *testing.T) {
	for pos := range 8 {
		for c := range 256 {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			want := c < utf8.RuneSelf && jsonSafe[c]
			if got := plain8(string(b), 0); got != want {
				t.Errorf("plain8 with byte %#x at %d = %v, want %v", c, pos, got, want)
			}
		}
	}
}

// FuzzAppendString checks that any string encodes to valid JSON that decodes
// to what encoding/json makes of it.
func FuzzAppendString(f *testing.F) {
	for _, s := range nastyStrings {
		f.Add(s)
		f.Add(s + s + "0123456789abcdef" + s) // exercise the 8-byte fast path around escapes
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := appendString(nil, s)
		var got string
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: not JSON: %v", s, out, err)
		}
		if want := viaStdlib(t, s); got != want {
			t.Errorf("appendString(%q) decodes to %q, want %q", s, got, want)
		}
	})
}

func TestAppendMillis(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.000"},
		{time.Nanosecond, "0.000"},
		{499 * time.Nanosecond, "0.000"},
		{500 * time.Nanosecond, "0.001"},
		{time.Microsecond, "0.001"},
		{12345678 * time.Nanosecond, "12.346"},
		{time.Second, "1000.000"},
		{90 * time.Minute, "5400000.000"},
		{-1500 * time.Microsecond, "-1.500"},
		{-time.Nanosecond, "0.000"},
	}
	for _, tt := range tests {
		t.Run(tt.d.String(), func(t *testing.T) {
			if got := string(appendMillis(nil, tt.d)); got != tt.want {
				t.Errorf("appendMillis(%v) = %s, want %s", tt.d, got, tt.want)
			}
		})
	}
}

// lineRecorder is a LineWriter that keeps copies, as LineWriter's contract
// requires of anything that keeps lines.
type lineRecorder struct{ lines [][]byte }

func (r *lineRecorder) Write(line []byte) { r.lines = append(r.lines, bytes.Clone(line)) }

type discard struct{}

func (discard) Write([]byte) {}

func TestAccessLogFillsZeroTime(t *testing.T) {
	rec := &lineRecorder{}
	l := NewAccessLog(rec)
	before := time.Now()
	e := &AccessEntry{App: "web", Status: 200}
	l.Log(e)
	if !e.Time.IsZero() {
		t.Errorf("Log modified the caller's entry: Time = %v", e.Time)
	}
	if len(rec.lines) != 1 {
		t.Fatalf("got %d lines, want 1", len(rec.lines))
	}
	got, err := time.Parse(time.RFC3339Nano, decode(t, rec.lines[0])["time"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if got.Before(before.Add(-time.Second)) || got.After(time.Now().Add(time.Second)) {
		t.Errorf("time = %v, want about now", got)
	}
}

func TestAccessLogNilWriter(t *testing.T) {
	NewAccessLog(nil).Log(&AccessEntry{})
	var aw *AsyncWriter
	NewAccessLog(aw).Log(&AccessEntry{})
	var l *AccessLog
	l.Log(&AccessEntry{})
}

func TestAccessLogToFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access.log")
	w := NewAsyncWriter(path, WriterOptions{})
	l := NewAccessLog(w)
	entries := []AccessEntry{
		{Time: time.Unix(1, 0), RequestID: "a", Path: "/one", Status: 200},
		{Time: time.Unix(2, 0), RequestID: "b", Path: "/two\n\"", Status: 503, Cause: "queue_full"},
	}
	for i := range entries {
		l.Log(&entries[i])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for _, line := range readLines(t, path) {
		got = append(got, decode(t, []byte(line+"\n")))
	}
	var want []map[string]any
	for i := range entries {
		want = append(want, decode(t, AppendAccessJSON(nil, &entries[i])))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}
}

func TestAccessLogAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under -race")
	}
	e := benchEntry()
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(1000, func() { buf = AppendAccessJSON(buf[:0], e) }); n != 0 {
		t.Errorf("AppendAccessJSON: %v allocs/op, want 0", n)
	}
	l := NewAccessLog(discard{})
	if n := testing.AllocsPerRun(1000, func() { l.Log(e) }); n != 0 {
		t.Errorf("AccessLog.Log: %v allocs/op, want 0", n)
	}
	// Through an AsyncWriter the buffers travel to the writer goroutine and
	// come back through the pool, so "steady state" means once enough of
	// them circulate: warm up, let the writer drain, then measure.
	w := NewAsyncWriter(filepath.Join(t.TempDir(), "access.log"), WriterOptions{BufferLines: 4096})
	defer w.Close()
	la := NewAccessLog(w)
	for range 2000 {
		la.Log(e)
	}
	testutil.WaitFor(t, 2*time.Second, "writer drained", func() bool {
		st := w.Stats()
		return st.Written+st.Dropped == 2000
	})
	// A GC between the warm-up and the measurement empties the pool, and
	// that run allocates until buffers circulate again: the steady state
	// is the best of a few measurements.
	best := math.Inf(1)
	for range 3 {
		best = min(best, testing.AllocsPerRun(1000, func() { la.Log(e) }))
		testutil.WaitFor(t, 2*time.Second, "writer drained", func() bool { return len(w.queue) == 0 })
	}
	if best != 0 {
		t.Errorf("AccessLog.Log to AsyncWriter: %v allocs/op, want 0", best)
	}
}

func benchEntry() *AccessEntry {
	return &AccessEntry{
		Time: time.Now(), RequestID: "01JD3X8W6KZ5Q7N2M4P9R1T3V5", App: "web", Instance: "web-2",
		Method: "GET", Host: "shop.example.com", Path: "/api/products/42?include=reviews",
		Status: 200, Bytes: 18432, Duration: 3217 * time.Microsecond, Upstream: 2984 * time.Microsecond,
		Attempts: 1, ConnReused: true, Client: "203.0.113.7:51234",
	}
}

func BenchmarkAppendAccessJSON(b *testing.B) {
	e := benchEntry()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendAccessJSON(buf[:0], e)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkAccessLog(b *testing.B) {
	b.Run("discard", func(b *testing.B) {
		l := NewAccessLog(discard{})
		e := benchEntry()
		b.ReportAllocs()
		for b.Loop() {
			l.Log(e)
		}
	})
	b.Run("async_file_parallel", func(b *testing.B) {
		w := NewAsyncWriter(filepath.Join(b.TempDir(), "access.log"), WriterOptions{})
		defer w.Close()
		l := NewAccessLog(w)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			e := benchEntry()
			for pb.Next() {
				l.Log(e)
			}
		})
		b.StopTimer()
		st := w.Stats()
		b.ReportMetric(float64(st.Dropped)/float64(b.N), "dropped/op")
	})
}
