package dumps

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Meta is what is known of a dump, kept beside it as NAME.json and
// answered by GET /api/dumps. The field names are part of the API.
type Meta struct {
	// Name is the dump's file name under data_dir/dumps.
	Name     string `json:"name"`
	App      string `json:"app"`
	Instance string `json:"instance"`
	PID      int    `json:"pid"`
	// Kind is core, stacks or heap.
	Kind string `json:"kind"`
	// Runtime is what the process runs: node, python, go, jvm, native.
	Runtime string `json:"runtime"`
	// Tool is what took the dump: gcore, the node inspector, py-spy…
	Tool string `json:"tool"`
	// Exe and BuildID name the executable a core is loaded against.
	Exe     string `json:"exe,omitempty"`
	BuildID string `json:"build_id,omitempty"`
	Size    int64  `json:"size"`
	// PausedMS is how long the process was stopped for the dump, at
	// most.
	PausedMS int64 `json:"paused_ms"`
	// DrainedMS is how long the instance was out of rotation before the
	// dump began; InflightAtStart the requests it still had then.
	DrainedMS       int64 `json:"drained_ms"`
	InflightAtStart int64 `json:"inflight_at_start"`
	// Ended: the dump ended the process by design (a Go program's
	// SIGQUIT).
	Ended bool `json:"ended,omitempty"`
	// Note is a remark of the tool's (an inspector left open…).
	Note    string    `json:"note,omitempty"`
	Created time.Time `json:"created"`
	// By is who asked for it: an admin client, or auto-heal's trigger.
	By string `json:"by"`
}

const (
	metaSuffix    = ".json"
	partialPrefix = ".partial-"
)

// ErrNotFound is a dump name the store does not hold.
var ErrNotFound = errors.New("no such dump")

// store is data_dir/dumps.
type store struct{ dir string }

// validName: a name the store made, never a path out of its directory.
func validName(name string) bool {
	return name != "" && !strings.HasPrefix(name, ".") && !strings.ContainsAny(name, `/\`) &&
		!strings.HasSuffix(name, metaSuffix) && filepath.Base(name) == name
}

// list returns the dumps held, oldest first. A dump file whose meta
// is missing or unreadable is left out (and left alone).
func (s store) list() ([]Meta, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dumps: %w", err)
	}
	var out []Meta
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), metaSuffix)
		if !ok || !validName(name) {
			continue
		}
		m, err := s.meta(name)
		if err != nil {
			continue
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Meta) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out, nil
}

func (s store) meta(name string) (Meta, error) {
	var m Meta
	b, err := os.ReadFile(filepath.Join(s.dir, name+metaSuffix))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("dumps: %s: %w", name+metaSuffix, err)
	}
	if m.Name != name {
		return m, fmt.Errorf("dumps: %s names %q", name+metaSuffix, m.Name)
	}
	return m, nil
}

// open returns the dump's file and what is known of it.
func (s store) open(name string) (*os.File, Meta, error) {
	if !validName(name) {
		return nil, Meta{}, fmt.Errorf("dumps: %q: %w", name, ErrNotFound)
	}
	m, err := s.meta(name)
	if err != nil {
		return nil, Meta{}, fmt.Errorf("dumps: %q: %w", name, ErrNotFound)
	}
	f, err := os.Open(filepath.Join(s.dir, name))
	if err != nil {
		return nil, Meta{}, fmt.Errorf("dumps: %q: %w", name, ErrNotFound)
	}
	return f, m, nil
}

// remove deletes a dump and its meta, the meta first: a dump without
// one is no longer listed.
func (s store) remove(name string) error {
	if !validName(name) {
		return fmt.Errorf("dumps: %q: %w", name, ErrNotFound)
	}
	if err := os.Remove(filepath.Join(s.dir, name+metaSuffix)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("dumps: %q: %w", name, ErrNotFound)
		}
		return fmt.Errorf("dumps: %w", err)
	}
	if err := os.Remove(filepath.Join(s.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("dumps: %w", err)
	}
	return nil
}

// create opens a partial file for a dump being taken, named with this
// process's pid (see clearPartials); commit gives it its name.
func (s store) create() (*os.File, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("dumps: %w", err)
	}
	f, err := os.CreateTemp(s.dir, s.partial()+"*")
	if err != nil {
		return nil, fmt.Errorf("dumps: %w", err)
	}
	return f, nil
}

// scratch makes a directory for a dump's uncompressed core, cleared
// like a partial file.
func (s store) scratch() (string, error) {
	dir, err := os.MkdirTemp(s.dir, s.partial()+"scratch-*")
	if err != nil {
		return "", fmt.Errorf("dumps: %w", err)
	}
	return dir, nil
}

// partial is the prefix of this process's partial files: ".partial-PID-".
func (s store) partial() string { return fmt.Sprintf("%s%d-", partialPrefix, os.Getpid()) }

// freeName is base.ext, or base-N.ext when a dump of the same
// millisecond has that name. Dumps of one instance are taken one at a
// time, so no other dump claims the name before commit.
func (s store) freeName(base, ext string) string {
	name := base + "." + ext
	for n := 2; ; n++ {
		if _, err := os.Lstat(filepath.Join(s.dir, name+metaSuffix)); errors.Is(err, fs.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d.%s", base, n, ext)
	}
}

// commit names the partial file m.Name and writes its meta beside it.
func (s store) commit(partial string, m Meta) error {
	if err := os.Rename(partial, filepath.Join(s.dir, m.Name)); err != nil {
		return fmt.Errorf("dumps: %w", err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("dumps: %w", err)
	}
	tmp := filepath.Join(s.dir, partialPrefix+m.Name+metaSuffix)
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("dumps: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, m.Name+metaSuffix)); err != nil {
		return fmt.Errorf("dumps: %w", err)
	}
	return nil
}

// orphanAge is how old a dump file without its meta (or a meta without
// its file) must be before it is taken for a crash's leftover: commit
// writes the two one after the other.
const orphanAge = time.Minute

// clearPartials removes what dumps cut short by a crash left: partial
// files and scratch directories of processes no longer running (an
// upgrade's successor starts while its predecessor may still be taking
// one), and dump files or metas left without their other half. It runs
// once, before this process takes a dump.
func (s store) clearPartials() {
	ents, _ := os.ReadDir(s.dir)
	names := map[string]bool{}
	for _, e := range ents {
		names[e.Name()] = true
	}
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(s.dir, name)
		if rest, ok := strings.CutPrefix(name, partialPrefix); ok {
			pid, _, _ := strings.Cut(rest, "-")
			// This process's own are leftovers too: it calls this before
			// its first dump, and a container's gatehouse is pid 1 at
			// every start.
			if n, err := strconv.Atoi(pid); err != nil || n == os.Getpid() || !running(n) {
				os.RemoveAll(path)
			}
			continue
		}
		base, isMeta := strings.CutSuffix(name, metaSuffix)
		other := name + metaSuffix
		if isMeta {
			other = base
		}
		if names[other] || !validName(base) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > orphanAge {
			os.Remove(path)
		}
	}
}

// running reports whether a process pid exists (signal 0).
func running(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// Limits is the dumps: block as the store applies it.
type Limits struct {
	MaxSize  int64
	MaxCount int
	// MaxAge 0 keeps dumps until the size or count removes them.
	MaxAge time.Duration
}

// removal is a dump the cap removes, and which limit did.
type removal struct {
	meta Meta
	why  string
}

// overCap lists the dumps to remove, oldest first: past MaxAge, then
// the oldest until the count and the size fit, the newest excepted from
// the size.
func overCap(dumps []Meta, l Limits, now time.Time) []removal {
	var out []removal
	var size int64
	for _, d := range dumps {
		size += d.Size
	}
	n := len(dumps)
	for i, d := range dumps {
		why := ""
		switch {
		case l.MaxAge > 0 && now.Sub(d.Created) > l.MaxAge:
			why = "max_age"
		case n > l.MaxCount:
			why = "max_count"
		case size > l.MaxSize && i < len(dumps)-1:
			// The newest is kept whatever its size, until the next:
			// removing the dump just taken would only have paused the
			// process for nothing.
			why = "max_size"
		default:
			continue
		}
		out = append(out, removal{d, why})
		n--
		size -= d.Size
	}
	return out
}
