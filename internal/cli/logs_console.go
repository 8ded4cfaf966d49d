package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// terminal is what `gatehouse run` writes to: gatehouse's own lines (its
// log and the lifecycle events) on standard error in one format,
// log_format's, and the instances' output (and the access log, with
// access_log: stdout) on standard output.
type terminal struct {
	// logger is gatehouse's own log.
	logger *slog.Logger
	// console takes the instances' output and the access log: one write
	// per line or batch of lines under one lock, so that neither cuts
	// into the other's lines.
	console io.Writer
	// event prints one lifecycle event as a line: WHO's TEXT.
	event func(ev telemetry.Event, who, text string)
	// warnings takes lines of text written before gatehouse starts (a
	// command that is not there): as they are, or as warnings in JSON.
	warnings io.Writer
}

// newTerminal writes gatehouse's own lines to stderr, the instances' to
// stdout, as text or, with asJSON, as one JSON object per line.
func newTerminal(stdout, stderr io.Writer, asJSON bool) *terminal {
	errw := &lockedWriter{w: stderr}
	out := &lockedWriter{w: stdout}
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if !asJSON {
		return &terminal{
			logger:   slog.New(&textHandler{w: errw, level: slog.LevelInfo}),
			console:  out,
			warnings: errw,
			event: func(ev telemetry.Event, who, text string) {
				fmt.Fprintf(errw, "%s %s %s\n", ev.Time.Local().Format("15:04:05"), who, text)
			},
		}
	}
	h := slog.NewJSONHandler(errw, opts)
	logger := slog.New(h)
	return &terminal{
		logger:   logger,
		console:  &jsonLines{lockedWriter: out},
		warnings: warnLines{logger},
		event: func(ev telemetry.Event, who, text string) {
			level := slog.LevelInfo
			switch ev.Type {
			case telemetry.EventExit, telemetry.EventStartTimeout, telemetry.EventUnhealthy:
				level = slog.LevelWarn
			}
			r := slog.NewRecord(ev.Time, level, who+" "+text, 0)
			r.AddAttrs(slog.String("event", ev.Type), slog.String("app", ev.App))
			if ev.Instance != "" {
				r.AddAttrs(slog.String("instance", ev.Instance))
			}
			h.Handle(context.Background(), r)
		},
	}
}

// warnLines logs each line written to it as a warning.
type warnLines struct{ log *slog.Logger }

func (w warnLines) Write(p []byte) (int, error) {
	for l := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		if l != "" {
			w.log.Warn(l)
		}
	}
	return len(p), nil
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// jsonLines shows the instances' output as JSON objects, one per line,
// as `gatehouse logs --json` prints them (it is a process.LineWriter).
type jsonLines struct {
	*lockedWriter
}

// WriteLine writes {time, app, instance, stream, line}.
func (j *jsonLines) WriteLine(t time.Time, app, instance, line string) {
	b, err := json.Marshal(logRecord{Time: t, App: app, Instance: instance, Stream: admin.StreamOutput, Line: line})
	if err != nil {
		return
	}
	j.Write(append(b, '\n'))
}

// textHandler is gatehouse's own log as the lifecycle lines read:
// "15:04:05 MESSAGE key=value ...", with "warning: " or "error: " before
// the message of those levels.
type textHandler struct {
	w     io.Writer
	level slog.Level
	attrs []byte // preformatted " key=value" of With
	group string // prefix of the keys, "g." under WithGroup("g")
}

func (h *textHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	b := t.Local().AppendFormat(nil, "15:04:05")
	b = append(b, ' ')
	switch {
	case r.Level >= slog.LevelError:
		b = append(b, "error: "...)
	case r.Level >= slog.LevelWarn:
		b = append(b, "warning: "...)
	}
	b = append(b, r.Message...)
	b = append(b, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		b = appendAttr(b, h.group, a)
		return true
	})
	b = append(b, '\n')
	_, err := h.w.Write(b)
	return err
}

func (h *textHandler) WithAttrs(as []slog.Attr) slog.Handler {
	n := *h
	n.attrs = append([]byte(nil), h.attrs...)
	for _, a := range as {
		n.attrs = appendAttr(n.attrs, h.group, a)
	}
	return &n
}

func (h *textHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.group = h.group + name + "."
	return &n
}

// appendAttr appends " key=value", the value quoted when it has spaces,
// quotes or "=" (or is empty), so that the line splits back into pairs.
func appendAttr(b []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return b
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			b = appendAttr(b, p, g)
		}
		return b
	}
	b = append(b, ' ')
	b = append(b, prefix...)
	b = append(b, a.Key...)
	b = append(b, '=')
	v := a.Value.String()
	if v == "" || strings.ContainsAny(v, " \t\n\"=") {
		return strconv.AppendQuote(b, v)
	}
	return append(b, v...)
}
