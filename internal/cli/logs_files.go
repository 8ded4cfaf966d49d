package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/process"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// followPoll is how often `logs -f` over files looks for what was added
// to them, as tail -f does.
const followPoll = 250 * time.Millisecond

// currentLog is an instance's log file being written, ID.log; its
// rotated files have a time after the id.
var currentLog = regexp.MustCompile(`^(.+-[0-9]+)\.log$`)

// logFile is one instance's log file in data_dir.
type logFile struct {
	path, app, inst string
}

// logFiles lists the instances' log files under dir/logs of the app and
// instance f asks for.
func logFiles(dir string, f logsFlags) ([]logFile, error) {
	apps, err := os.ReadDir(filepath.Join(dir, "logs"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	var out []logFile
	for _, a := range apps {
		if !a.IsDir() || (f.app != "" && a.Name() != f.app) {
			continue
		}
		files, err := os.ReadDir(filepath.Join(dir, "logs", a.Name()))
		if err != nil {
			return nil, fmt.Errorf("read logs: %w", err)
		}
		for _, e := range files {
			m := currentLog.FindStringSubmatch(e.Name())
			if m == nil || !f.matches(a.Name(), m[1]) {
				continue
			}
			out = append(out, logFile{path: filepath.Join(dir, "logs", a.Name(), e.Name()), app: a.Name(), inst: m[1]})
		}
	}
	return out, nil
}

// parseLogLine splits a line of an instance's log file into its stamp and
// text; a line without a stamp (written before lines were stamped) has
// the zero time.
func parseLogLine(lf logFile, b []byte) logRecord {
	r := logRecord{App: lf.app, Instance: lf.inst, Stream: admin.StreamOutput, Line: string(b)}
	if i := bytes.IndexByte(b, ' '); i > 0 {
		if t, err := time.Parse(process.FileTimeLayout, string(b[:i])); err == nil {
			r.Time, r.Line = t, string(b[i+1:])
		}
	}
	return r
}

// printFiles prints the last lines of the log files in dir (and the
// events of events.log without -f, or with --events) and, with -f,
// follows the files as they grow until the command's context ends.
func printFiles(c *cobra.Command, f logsFlags, dir string) error {
	files, err := logFiles(dir, f)
	if err != nil {
		return err
	}
	if len(files) == 0 && !f.follow {
		if _, err := os.Stat(filepath.Join(dir, "logs")); err != nil {
			return fmt.Errorf("no instance logs in %s: %w", dir, err)
		}
	}
	var since time.Time
	if f.since > 0 {
		since = time.Now().Add(-f.since)
	}
	var recs []logRecord
	// With -f, each file stays open from here on: following it reads on
	// from where its last lines end, in the file read, even once it has
	// been renamed by a rotation.
	tails := map[string]*followed{}
	defer func() {
		for _, t := range tails {
			t.fd.Close()
		}
	}()
	for _, lf := range files {
		fd, err := os.Open(lf.path)
		if err != nil {
			return fmt.Errorf("read log: %w", err)
		}
		lines, end, err := tailFile(fd, f.lines)
		if f.follow && err == nil {
			tails[lf.path] = &followed{lf: lf, fd: fd, off: end}
		} else {
			fd.Close()
		}
		if err != nil {
			return err
		}
		for _, l := range lines {
			if r := parseLogLine(lf, l); !r.Time.Before(since) {
				recs = append(recs, r)
			}
		}
	}
	if !f.follow || f.events {
		evs, err := telemetry.ReadEvents(filepath.Join(dir, "events.log"), since)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for _, e := range evs {
			if f.matches(e.App, e.Instance) {
				recs = append(recs, eventRecord(e))
			}
		}
	}
	out := c.OutOrStdout()
	for _, r := range lastRecords(recs, f.lines) {
		printRecord(out, r, f.json)
	}
	if !f.follow {
		return nil
	}
	return followFiles(c.Context(), dir, f, tails, out)
}

// followFiles prints the lines added to the instances' log files from
// where tails are (a file not in tails, new since, from its start) until
// ctx ends. A line is printed once it is complete. A file renamed by a
// rotation is read to its end before the new file at its path is
// followed from its start; one that shrank (truncated) from its new
// start. The files in tails when it returns are the caller's to close.
func followFiles(ctx context.Context, dir string, f logsFlags, tails map[string]*followed, out io.Writer) error {
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		files, err := logFiles(dir, f)
		if err != nil {
			return err
		}
		for _, lf := range files {
			if tails[lf.path] == nil {
				fd, err := os.Open(lf.path)
				if errors.Is(err, os.ErrNotExist) {
					continue // rotated away between the listing and now
				}
				if err != nil {
					return fmt.Errorf("follow %s: %w", lf.path, err)
				}
				tails[lf.path] = &followed{lf: lf, fd: fd}
			}
		}
		var recs []logRecord
		for path, ft := range tails {
			fresh, next, err := ft.poll()
			if err != nil {
				return err
			}
			if next != nil {
				ft.fd.Close()
				tails[path] = next
			}
			for _, l := range fresh {
				recs = append(recs, parseLogLine(ft.lf, l))
			}
		}
		// Lines of several instances that arrived in one poll, in time
		// order.
		sort.SliceStable(recs, func(i, j int) bool { return recs[i].Time.Before(recs[j].Time) })
		for _, r := range recs {
			printRecord(out, r, f.json)
		}
	}
}

// followed is a log file `logs -f` follows: open, read up to off, with
// the unterminated rest of what was read in partial.
type followed struct {
	lf      logFile
	fd      *os.File
	off     int64
	partial []byte
}

// poll returns the complete lines added to the file since the last poll.
// When its path now names another file (a rotation renamed this one),
// this one is read to its end and next is the new file, read from its
// start: a line cut by the rotation is whole again.
func (ft *followed) poll() (lines [][]byte, next *followed, err error) {
	if lines, err = ft.read(); err != nil {
		return nil, nil, err
	}
	st, err := os.Stat(ft.lf.path)
	if err != nil {
		// Renamed, its successor not created yet: the next poll finds it.
		return lines, nil, nil
	}
	cur, err := ft.fd.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("follow %s: %w", ft.lf.path, err)
	}
	if os.SameFile(st, cur) {
		return lines, nil, nil
	}
	// Written to until it was renamed: what came after the read above.
	more, err := ft.read()
	if err != nil {
		return nil, nil, err
	}
	lines = append(lines, more...)
	fd, err := os.Open(ft.lf.path)
	if errors.Is(err, os.ErrNotExist) {
		return lines, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("follow %s: %w", ft.lf.path, err)
	}
	next = &followed{lf: ft.lf, fd: fd, partial: ft.partial}
	more, err = next.read()
	if err != nil {
		fd.Close()
		return nil, nil, err
	}
	return append(lines, more...), next, nil
}

// read returns the complete lines of the file after off, and moves off
// past what it read; the unterminated rest is kept in partial until its
// newline comes.
func (ft *followed) read() ([][]byte, error) {
	st, err := ft.fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", ft.lf.path, err)
	}
	if st.Size() < ft.off {
		ft.off, ft.partial = 0, nil // truncated: a new start
	}
	if st.Size() == ft.off {
		return nil, nil
	}
	b := make([]byte, st.Size()-ft.off)
	n, err := ft.fd.ReadAt(b, ft.off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("follow %s: %w", ft.lf.path, err)
	}
	ft.off += int64(n)
	b = append(ft.partial, b[:n]...)
	var lines [][]byte
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, b[:i])
		b = b[i+1:]
	}
	ft.partial = bytes.Clone(b)
	return lines, nil
}

// tailChunk is how much of a file tailFile reads at a time, from its end.
const tailChunk = 64 << 10

// tailFile returns the last n complete lines of the file fd (all of
// them when n is 0) and the offset just past the last one, where
// following it begins; it reads from the end, so a large file costs what
// its last lines do.
func tailFile(fd *os.File, n int) (lines [][]byte, end int64, err error) {
	st, err := fd.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("read log: %w", err)
	}
	size := st.Size()
	// The chunks read, last first, and their newlines: each chunk is
	// read and counted once, and they are joined once at the end, so
	// that the whole of a large file (n == 0) costs what it holds rather
	// than a copy of what was read so far per chunk.
	var chunks [][]byte
	newlines := 0
	pos := size
	for pos > 0 {
		step := min(int64(tailChunk), pos)
		pos -= step
		chunk := make([]byte, step)
		if _, err := fd.ReadAt(chunk, pos); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("read log: %w", err)
		}
		chunks = append(chunks, chunk)
		newlines += bytes.Count(chunk, []byte{'\n'})
		// One newline more than n lines have, so the first is whole.
		if n > 0 && newlines > n {
			break
		}
	}
	buf := make([]byte, 0, size-pos)
	for i := len(chunks) - 1; i >= 0; i-- {
		buf = append(buf, chunks[i]...)
	}
	// An unterminated last line is still being written: following
	// begins at its start, and prints it once it is whole.
	last := bytes.LastIndexByte(buf, '\n')
	end = pos + int64(last+1)
	buf = buf[:last+1]
	if pos > 0 {
		// The first line may be cut: it is not one of the last n.
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, '\n')
		lines = append(lines, buf[:i])
		buf = buf[i+1:]
	}
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, end, nil
}
