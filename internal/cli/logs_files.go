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
	offsets := map[string]int64{}
	for _, lf := range files {
		lines, end, err := tailFile(lf.path, f.lines)
		if err != nil {
			return err
		}
		offsets[lf.path] = end
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
	return followFiles(c.Context(), dir, f, offsets, out)
}

// followFiles prints the lines added to the instances' log files from
// the offsets on (a file not in offsets, new since, from its start; one
// that shrank, rotated, from its new start) until ctx ends. A line is
// printed once it is complete.
func followFiles(ctx context.Context, dir string, f logsFlags, offsets map[string]int64, out io.Writer) error {
	t := time.NewTicker(followPoll)
	defer t.Stop()
	partial := map[string][]byte{}
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
		var recs []logRecord
		for _, lf := range files {
			fresh, err := readFrom(lf.path, offsets, partial)
			if err != nil {
				return err
			}
			for _, l := range fresh {
				recs = append(recs, parseLogLine(lf, l))
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

// readFrom returns the complete lines of the file at path after
// offsets[path], and moves the offset past them; the unterminated rest is
// kept in partial until its newline comes.
func readFrom(path string, offsets map[string]int64, partial map[string][]byte) ([][]byte, error) {
	fd, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // rotated away between the listing and now
	}
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", path, err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", path, err)
	}
	off := offsets[path]
	if st.Size() < off {
		off, partial[path] = 0, nil // rotated: a new file
	}
	if st.Size() == off {
		return nil, nil
	}
	b := make([]byte, st.Size()-off)
	n, err := fd.ReadAt(b, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("follow %s: %w", path, err)
	}
	offsets[path] = off + int64(n)
	b = append(partial[path], b[:n]...)
	var lines [][]byte
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		lines = append(lines, b[:i])
		b = b[i+1:]
	}
	partial[path] = bytes.Clone(b)
	return lines, nil
}

// tailChunk is how much of a file tailFile reads at a time, from its end.
const tailChunk = 64 << 10

// tailFile returns the last n complete lines of the file at path (all of
// them when n is 0) and the offset just past the last one, where
// following it begins; it reads from the end, so a large file costs what
// its last lines do.
func tailFile(path string, n int) (lines [][]byte, end int64, err error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("read log: %w", err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("read log: %w", err)
	}
	size := st.Size()
	var buf []byte
	pos := size
	for pos > 0 {
		step := min(int64(tailChunk), pos)
		pos -= step
		chunk := make([]byte, step)
		if _, err := fd.ReadAt(chunk, pos); err != nil && !errors.Is(err, io.EOF) {
			return nil, 0, fmt.Errorf("read log: %w", err)
		}
		buf = append(chunk, buf...)
		// One newline more than n lines have, so the first is whole.
		if n > 0 && bytes.Count(buf, []byte{'\n'}) > n {
			break
		}
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
