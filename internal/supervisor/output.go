package supervisor

import (
	"bytes"
	"io"
	"sync"
	"time"

	"github.com/DeRuina/timberjack"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// output receives an instance's stdout and stderr: it writes them to the
// instance's rotated log file, to the console prefixed with the instance id,
// and keeps the last lines in memory for diagnose.
type output struct {
	app     string
	id      string
	lines   *telemetry.Lines
	file    *timberjack.Logger
	console *console

	mu      sync.Mutex
	partial []byte
	tail    []string
}

const tailLines = 50

func newOutput(app, id, path string, c *console, lines *telemetry.Lines) *output {
	return &output{
		app:     app,
		lines:   lines,
		id:      id,
		console: c,
		file:    &timberjack.Logger{Filename: path, MaxSize: 50, MaxBackups: 3},
	}
}

// Write never fails: a full disk must not block or kill the app.
func (o *output) Write(p []byte) (int, error) {
	o.file.Write(p)
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial = append(o.partial, p...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		line := string(o.partial[:i])
		o.partial = o.partial[i+1:]
		o.keep(line)
		o.console.line(o.id, line)
		if o.lines != nil {
			o.lines.Publish(telemetry.LogLine{Time: time.Now(), App: o.app, Instance: o.id, Line: line})
		}
	}
	if len(o.partial) > 64<<10 {
		o.keep(string(o.partial))
		o.partial = o.partial[:0]
	}
	return len(p), nil
}

func (o *output) keep(line string) {
	if len(o.tail) == tailLines {
		copy(o.tail, o.tail[1:])
		o.tail = o.tail[:tailLines-1]
	}
	o.tail = append(o.tail, line)
}

// Tail returns the last lines the instance wrote.
func (o *output) Tail() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.tail...)
}

func (o *output) Close() error { return o.file.Close() }

// console serialises prefixed lines from all instances to one writer.
type console struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

func (c *console) line(id, line string) {
	if c == nil || c.w == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf[:0], id...)
	c.buf = append(c.buf, " | "...)
	c.buf = append(c.buf, line...)
	c.buf = append(c.buf, '\n')
	c.w.Write(c.buf)
}
