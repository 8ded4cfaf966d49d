package telemetry

import (
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
// from since on (those rotated before since hold none), oldest first. A
// file that cannot be read is skipped and its error returned with the
// others once the rest is read; the log at path, or a rotated file,
// gone meanwhile (rotated, removed) is no error.
//
// The log at path is opened first and read last: a rotation while the
// rotated files are read renames it, and what it held is still read,
// once (the file it became is not read as a rotated one too). Lines
// written after the read began may be missed.
func ReadRotated(path string, since time.Time, fn func(line []byte)) error {
	var errs []error
	current, err := os.Open(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("read %s: %w", filepath.Base(path), err))
	}
	var held os.FileInfo
	if current != nil {
		defer current.Close()
		held, _ = current.Stat()
	}
	rotated, err := RotatedFiles(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	for _, r := range rotated {
		if r.At.Before(since) {
			continue
		}
		if fi, err := os.Stat(r.Path); err == nil && held != nil && os.SameFile(fi, held) {
			continue // the log at path, rotated since it was opened
		}
		if err := readLog(r.Path, fn); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if current != nil {
		if err := ReadLines(current, fn); err != nil {
			errs = append(errs, fmt.Errorf("read %s: %w", filepath.Base(path), err))
		}
	}
	return errors.Join(errs...)
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
// was rotated into since since, oldest first.
func ReadRotatedEvents(path string, since time.Time) ([]Event, error) {
	var out []Event
	err := ReadRotated(path, since, func(line []byte) {
		if ev, ok := parseEvent(line, since); ok {
			out = append(out, ev)
		}
	})
	if err != nil {
		return out, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}
