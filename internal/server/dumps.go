package server

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/dumps"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// newDumper keeps the process dumps in data_dir/dumps.
func (s *Server) newDumper(cfg *config.Config) *dumps.Dumper {
	d := cfg.Dumps
	return dumps.New(dumps.Options{
		Dir: filepath.Join(cfg.DataDir, "dumps"), Fleet: dumpFleet{s.sup, s.lines}, Events: s.events,
		Limits:       dumps.Limits{MaxSize: int64(d.MaxSize), MaxCount: d.MaxCount, MaxAge: d.MaxAge.D()},
		DrainTimeout: d.DrainTimeout.D(),
	})
}

// dumpFleet finds the instances dumps are taken of.
type dumpFleet struct {
	sup   *supervisor.Supervisor
	lines *telemetry.Lines
}

func (f dumpFleet) Find(app, id string) (string, string, dumps.Instance, error) {
	if id == "" {
		a := f.sup.App(app)
		if a == nil {
			return "", "", nil, &dumps.Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("no app %q", app)}
		}
		for _, in := range a.Instances() {
			if len(in.Spec().Command) == 0 {
				return "", "", nil, &dumps.Error{Status: http.StatusConflict, Msg: fmt.Sprintf("%s is an external pool: gatehouse runs no process of it", app)}
			}
			if in.Status().State == "ready" {
				return a.Name(), in.ID, dumpInstance{in, a.Name(), f.lines}, nil
			}
		}
		return "", "", nil, &dumps.Error{Status: http.StatusServiceUnavailable,
			Msg: fmt.Sprintf("%s has no ready instance; name one (gatehouse dump %s/INSTANCE)", app, app)}
	}
	for _, a := range f.sup.Apps() {
		for _, in := range a.Instances() {
			if in.ID != id {
				continue
			}
			if len(in.Spec().Command) == 0 {
				return "", "", nil, &dumps.Error{Status: http.StatusConflict, Msg: fmt.Sprintf("%s is an external upstream: gatehouse runs no process of it", id)}
			}
			return a.Name(), in.ID, dumpInstance{in, a.Name(), f.lines}, nil
		}
	}
	return "", "", nil, &dumps.Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("no instance %q", id)}
}

type dumpInstance struct {
	in    *supervisor.Instance
	app   string
	lines *telemetry.Lines
}

func (d dumpInstance) PID() int {
	pid, _ := d.in.Running()
	return pid
}

func (d dumpInstance) Inflight() int64 { return d.in.Inflight() }

func (d dumpInstance) Hold() func() {
	m := d.in.CurrentMember()
	if m == nil {
		return func() {}
	}
	return m.Hold()
}

func (d dumpInstance) Output() io.ReadCloser {
	ch, stop := d.lines.Subscribe(1 << 16)
	return &outputReader{ch: ch, stop: stop, app: d.app, id: d.in.ID, pid: d.PID()}
}

// outputQuiet is how long an instance's output is read after its last
// line: what a dying process wrote reaches the pipe's reader at once.
// outputFirst is the wait for the first line, longer, for a machine
// busy enough to delay the output's reader.
const (
	outputQuiet = 500 * time.Millisecond
	outputFirst = 5 * time.Second
)

// outputReader reads an instance's process's lines from the live output
// until they stop for outputQuiet.
type outputReader struct {
	ch      <-chan telemetry.LogLine
	stop    func()
	app, id string
	pid     int
	buf     strings.Builder
	off     int
	done    bool
}

func (r *outputReader) Read(p []byte) (int, error) {
	for r.off >= r.buf.Len() && !r.done {
		r.next()
	}
	if r.off >= r.buf.Len() {
		return 0, io.EOF
	}
	n := copy(p, r.buf.String()[r.off:])
	r.off += n
	return n, nil
}

func (r *outputReader) next() {
	wait := outputQuiet
	if r.buf.Len() == 0 {
		wait = outputFirst
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case l, ok := <-r.ch:
			if !ok {
				r.done = true
				return
			}
			if l.App != r.app || l.Instance != r.id || l.PID != r.pid {
				continue
			}
			r.buf.WriteString(l.Line)
			r.buf.WriteByte('\n')
			return
		case <-t.C:
			r.done = true
			return
		}
	}
}

func (r *outputReader) Close() error {
	r.stop()
	return nil
}
