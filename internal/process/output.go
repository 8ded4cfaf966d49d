package process

import (
	"bytes"
	"io"
	"os"
	"sync"
	"time"

	"github.com/DeRuina/timberjack"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Output receives an instance's stdout and stderr: it writes them to the
// instance's rotated log file, each line stamped with the time its first
// byte arrived (RFC 3339 with milliseconds, UTC, then a space: see
// FileTimeLayout), to the console prefixed with the instance id,
// and keeps the last lines in memory for diagnose. Every process of the
// instance writes through its own Writer, so each line is known by the
// pid that wrote it: a restarted instance's exit shows its own process's
// last lines, not its predecessor's.
type Output struct {
	app     string
	id      string
	lines   Lines
	file    *timberjack.Logger
	console *Console

	mu   sync.Mutex
	tail []outLine
	cur  *Writer
	// midLine: the file's last line has no newline yet, so the next
	// bytes continue it rather than start a stamped line; under mu.
	midLine bool
	// written: the file has been written to. Before the first write, a
	// file that ends in a line cut short (its gatehouse was killed in
	// the middle of it) is ended, so that the first stamped line starts
	// a line of its own; looked at then rather than at the start, after
	// a predecessor that handed over has ended the line itself. Under mu.
	written bool
	stamp   []byte // the file's write buffer, under mu
}

// FileTimeLayout is the stamp at the start of every line of an
// instance's log file, followed by one space and the line as the process
// wrote it.
const FileTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// FileOptions are the rotation and retention of the instances' log files;
// zero fields take timberjack's defaults, as NewOutput documents.
type FileOptions struct {
	// MaxSizeMB rotates a file at this size. 0: 100.
	MaxSizeMB int
	// MaxBackups is how many rotated files are kept. 0: all.
	MaxBackups int
	// MaxAgeDays removes rotated files older than this. 0: never.
	MaxAgeDays int
}

// Lines is the live log stream every complete line is published to.
type Lines interface {
	Publish(telemetry.LogLine)
}

// outLine is one kept line and the pid of the process that wrote it.
type outLine struct {
	pid  int
	text string
}

const tailLines = 50

// pidWait bounds how long a process's first write waits for its pid to be
// known (SetPID right after the spawn returns): the pipe holds what the
// process writes meanwhile.
const pidWait = 2 * time.Second

// NewOutput is the output of instance id of app, written to the log file
// path, rotated as fo says, shown on c (nil: nowhere) and published to
// lines (nil: nowhere).
func NewOutput(app, id, path string, fo FileOptions, c *Console, lines Lines) *Output {
	return &Output{
		app:     app,
		lines:   lines,
		id:      id,
		console: c,
		file:    &timberjack.Logger{Filename: path, MaxSize: fo.MaxSizeMB, MaxBackups: fo.MaxBackups, MaxAge: fo.MaxAgeDays},
	}
}

// endsCut reports whether the file at path ends without a newline.
func endsCut(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() == 0 {
		return false
	}
	last := make([]byte, 1)
	_, err = f.ReadAt(last, st.Size()-1)
	return err == nil && last[0] != '\n'
}

// Writer is the writer one process's stdout and stderr go to. It is a
// pointer, so that os/exec sees the same writer for both and serialises
// their writes through one pipe.
type Writer struct {
	o     *Output
	known chan struct{} // closed by SetPID
	pid   int           // set once, before known is closed
	// partial is the unterminated end of what the process wrote, and
	// began when its first byte arrived; under o.mu.
	partial []byte
	began   time.Time
}

// Process returns the writer for the next process of the instance. Its
// lines are attributed once SetPID names the process; the previous
// process's unterminated last line, if any, is kept as a line of its own
// rather than glued to the new process's first.
func (o *Output) Process() *Writer {
	p := &Writer{o: o, known: make(chan struct{})}
	o.mu.Lock()
	if o.cur != nil {
		o.cur.flushLocked()
	}
	o.cur = p
	o.mu.Unlock()
	return p
}

// SetPID names the process that writes to p. Call it once, right after
// the process started.
func (p *Writer) SetPID(pid int) {
	p.pid = pid
	close(p.known)
}

// Write never fails: a full disk must not block or kill the app.
func (p *Writer) Write(b []byte) (int, error) {
	select {
	case <-p.known:
	default:
		t := time.NewTimer(pidWait)
		select {
		case <-p.known:
		case <-t.C:
		}
		t.Stop()
	}
	o := p.o
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fileLocked(b, now)
	if len(p.partial) == 0 {
		p.began = now
	}
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := string(p.partial[:i])
		p.partial = p.partial[i+1:]
		o.lineLocked(p.pidNow(), p.began, line)
		p.began = now
	}
	if len(p.partial) > 64<<10 {
		p.flushLocked()
	}
	return len(b), nil
}

// pidNow is the pid, or 0 if it is not known yet (SetPID never came).
func (p *Writer) pidNow() int {
	select {
	case <-p.known:
		return p.pid
	default:
		return 0
	}
}

// flushLocked keeps the unterminated rest as a line; o.mu is held.
func (p *Writer) flushLocked() {
	if len(p.partial) == 0 {
		return
	}
	line := string(p.partial)
	p.partial = p.partial[:0]
	p.o.lineLocked(p.pidNow(), p.began, line)
	if p.o.midLine {
		// The line is kept as one: so it ends in the file too.
		p.o.fileLocked([]byte{'\n'}, time.Now())
	}
}

// fileLocked writes b to the log file, a stamp of now before each line
// it starts; o.mu is held. What is written as it arrives, not once a
// line is complete: a line cut by a crash or a hand-over is in the file.
func (o *Output) fileLocked(b []byte, now time.Time) {
	buf := o.stamp[:0]
	if !o.written {
		o.written = true
		if endsCut(o.file.Filename) {
			buf = append(buf, '\n')
		}
	}
	for len(b) > 0 {
		if !o.midLine {
			buf = now.UTC().AppendFormat(buf, FileTimeLayout)
			buf = append(buf, ' ')
			o.midLine = true
		}
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			buf = append(buf, b...)
			break
		}
		buf = append(buf, b[:i+1]...)
		b = b[i+1:]
		o.midLine = false
	}
	o.file.Write(buf)
	if cap(buf) <= 64<<10 {
		o.stamp = buf
	}
}

// lineLocked keeps, shows and publishes one complete line that began at
// t; o.mu is held.
func (o *Output) lineLocked(pid int, t time.Time, line string) {
	if len(o.tail) == tailLines {
		copy(o.tail, o.tail[1:])
		o.tail = o.tail[:tailLines-1]
	}
	o.tail = append(o.tail, outLine{pid: pid, text: line})
	o.console.line(o.app, o.id, t, line)
	if o.lines != nil {
		o.lines.Publish(telemetry.LogLine{Time: t, App: o.app, Instance: o.id, PID: pid, Line: line})
	}
}

// Tail returns the last lines the instance wrote, whichever of its
// processes wrote them.
func (o *Output) Tail() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]string, 0, len(o.tail))
	for _, l := range o.tail {
		out = append(out, l.text)
	}
	return out
}

// Exited is called once process pid has exited and its output has been
// read to the end: its unterminated last line (a message printed without
// a newline before dying) is kept as a line, and the last lines that
// process wrote are returned, none of another process's.
func (o *Output) Exited(pid int) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur != nil && o.cur.pidNow() == pid {
		o.cur.flushLocked()
	}
	var out []string
	for _, l := range o.tail {
		if l.pid == pid {
			out = append(out, l.text)
		}
	}
	return out
}

// Flush keeps process pid's unterminated last line as a line: it was
// left to another gatehouse, which reads the rest of it.
func (o *Output) Flush(pid int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cur != nil && o.cur.pidNow() == pid {
		o.cur.flushLocked()
	}
}

// Close closes the log file.
func (o *Output) Close() error { return o.file.Close() }

// Console serialises prefixed lines from all instances to one writer.
type Console struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// LineWriter is a console writer that formats instance output itself
// (as JSON, say) rather than take "ID | LINE" lines.
type LineWriter interface {
	WriteLine(t time.Time, app, instance, line string)
}

// NewConsole writes to w; nil w shows nothing. A w that is a LineWriter
// is given each line with its time, app and instance.
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

func (c *Console) line(app, id string, t time.Time, line string) {
	if c == nil || c.w == nil {
		return
	}
	if lw, ok := c.w.(LineWriter); ok {
		lw.WriteLine(t, app, id, line)
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
