package telemetry

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Rotated is a file a log was rotated into.
type Rotated struct {
	Path string
	// At is when it was rotated: it holds nothing written later.
	At time.Time
}

// rotatedTime is the layout of the time in a rotated file's name, in
// UTC: timberjack's default, which AsyncWriter keeps.
const rotatedTime = "2006-01-02T15-04-05.000"

// RotatedFiles lists the files the log at path was rotated into, oldest
// first, as AsyncWriter's rotation names them beside it:
// NAME-2006-01-02T15-04-05.000-REASON.EXT (the reason "size", "time",
// "size_1" for a second rotation within the millisecond, or none), and
// with .gz or .zst once compressed. A file found both plain and
// compressed is being compressed: the plain one is listed, whole.
func RotatedFiles(path string) ([]Rotated, error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ext := filepath.Ext(name)
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(strings.TrimSuffix(name, ext)) +
		`-([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}-[0-9]{2}-[0-9]{2}\.[0-9]{3})(-[a-z0-9_]+)?` + regexp.QuoteMeta(ext) + `(\.gz|\.zst)?$`)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list rotated logs: %w", err)
	}
	var all []rotatedFile
	plain := map[string]bool{}
	for _, e := range entries {
		m := re.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		at, err := time.ParseInLocation(rotatedTime, m[1], time.UTC)
		if err != nil {
			continue
		}
		f := rotatedFile{Rotated{filepath.Join(dir, e.Name()), at}, strings.TrimSuffix(e.Name(), m[3])}
		plain[f.name] = plain[f.name] || m[3] == ""
		all = append(all, f)
	}
	// Rotations within one millisecond differ by their reason's suffix:
	// "size" before "size_1" before "size_2".
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i], all[j]
		if !a.At.Equal(b.At) {
			return a.At.Before(b.At)
		}
		if len(a.name) != len(b.name) {
			return len(a.name) < len(b.name)
		}
		return a.name < b.name
	})
	out := make([]Rotated, 0, len(all))
	for _, f := range all {
		if compressed := filepath.Base(f.Path) != f.name; !compressed || !plain[f.name] {
			out = append(out, f.Rotated)
		}
	}
	return out, nil
}

// rotatedFile is a rotated file with its name as rotated, before any
// compression.
type rotatedFile struct {
	Rotated
	name string
}

// OpenLog opens a log file, or one it was rotated into, for reading: a
// compressed one (.gz, .zst) is read decompressed.
func OpenLog(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	switch filepath.Ext(path) {
	case ".gz":
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
	case ".zst":
		zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
	}
	return f, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// ReadRotated calls fn, as ReadLines does, with each line of the log at
// path and of the files it was rotated into that may hold lines written
// from since on (those rotated before since hold none), oldest first, and
// of those the newest ReadBudget bytes at most. A file that cannot be
// read is skipped and its error returned with the others once the rest
// is read; the log at path, or a rotated file, gone meanwhile (rotated,
// removed) is no error.
//
// The log at path is opened first and read last: a rotation while the
// rotated files are read renames it, and what it held is still read,
// once (the file it became is not read as a rotated one too). Lines
// written after the read began may be missed.
func ReadRotated(path string, since time.Time, fn func(line []byte)) error {
	_, err := readRotated(path, since, ReadBudget, fn)
	return err
}

// ReadRotatedNewest is ReadRotated, and reports whether the budget left
// out lines that may have been written from since on: then what fn saw
// is the window's newest part only, and a reader that counts or looks
// for something in the whole window must say so.
func ReadRotatedNewest(path string, since time.Time, fn func(line []byte)) (cut bool, err error) {
	return readRotated(path, since, ReadBudget, fn)
}

// ReadBudget bounds what ReadRotated reads of a log and its rotated files
// together: the newest bytes, as many as one file holds by default
// before it rotates. A diagnose of a busy gatehouse, which its dashboard
// runs every half minute, then reads and holds what one file did, not
// every file of the last hour. A compressed file counts as
// compressedRatio times its size.
const ReadBudget = 100 << 20

// compressedRatio is about how much larger an access or events log is
// than its .gz or .zst.
const compressedRatio = 8

func readRotated(path string, since time.Time, budget int64, fn func(line []byte)) (cut bool, err error) {
	var errs []error
	current, err := os.Open(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("read %s: %w", filepath.Base(path), err))
	}
	var held os.FileInfo
	left := budget
	var currentSkip int64
	if current != nil {
		defer current.Close()
		held, _ = current.Stat()
		if held != nil {
			currentSkip, left = max(held.Size()-left, 0), max(left-held.Size(), 0)
			cut = currentSkip > 0
		}
	}
	rotated, err := RotatedFiles(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	// Chosen newest first, while the budget lasts; the last one chosen
	// may be read from skip on, its newest part.
	type part struct {
		path string
		skip int64
	}
	var parts []part
	for i := len(rotated) - 1; i >= 0; i-- {
		r := rotated[i]
		if r.At.Before(since) {
			break // and so were the older ones
		}
		if left == 0 {
			cut = true // a file of the window the budget leaves out
			break
		}
		fi, err := os.Stat(r.Path)
		if err != nil || held != nil && os.SameFile(fi, held) {
			continue // gone, or the log at path, rotated since it was opened
		}
		cost, plain := fi.Size(), !strings.HasSuffix(r.Path, ".gz") && !strings.HasSuffix(r.Path, ".zst")
		if !plain {
			cost *= compressedRatio
		}
		if cost <= left {
			parts = append(parts, part{r.Path, 0})
			left -= cost
			continue
		}
		if plain {
			parts = append(parts, part{r.Path, fi.Size() - left})
		}
		left, cut = 0, true
	}
	for i := len(parts) - 1; i >= 0; i-- {
		if err := readLogFrom(parts[i].path, parts[i].skip, fn); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if current != nil {
		if err := readFrom(current, currentSkip, fn); err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", filepath.Base(path), err))
		}
	}
	return cut, errors.Join(errs...)
}

// readFrom reads f's lines from offset skip on, less the one the offset
// cuts, if it cuts one.
func readFrom(f *os.File, skip int64, fn func(line []byte)) error {
	if skip == 0 {
		return ReadLines(f, fn)
	}
	// From the byte before: the newline that ends it, or the rest of the
	// line cut, goes first.
	if _, err := f.Seek(skip-1, io.SeekStart); err != nil {
		return err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		_, err := br.ReadSlice('\n')
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return nil // no line begins after the offset
		}
	}
	return ReadLines(br, fn)
}

func readLogFrom(path string, skip int64, fn func(line []byte)) error {
	if skip == 0 {
		return readLog(path, fn)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	defer f.Close()
	if err := readFrom(f, skip, fn); err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return nil
}

func readLog(path string, fn func(line []byte)) error {
	r, err := OpenLog(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	defer r.Close()
	if err := ReadLines(r, fn); err != nil {
		return fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	return nil
}

// ReadRotatedEvents is ReadEvents over the log at path and the files it
// was rotated into since since, oldest first. cut says that the budget
// left out events from since on: it did, as ReadRotatedNewest says, and
// no event read is older than since.
func ReadRotatedEvents(path string, since time.Time) (events []Event, cut bool, err error) {
	older := false
	cut, err = ReadRotatedNewest(path, since, func(line []byte) {
		ev, ok := parseEvent(line, time.Time{})
		switch {
		case !ok:
		case ev.Time.Before(since):
			older = true
		default:
			events = append(events, ev)
		}
	})
	cut = cut && !older
	if err != nil {
		return events, cut, fmt.Errorf("read events: %w", err)
	}
	return events, cut, nil
}
