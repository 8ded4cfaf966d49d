package procdump

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Kind is what a dump holds.
type Kind string

// The kinds of dump.
const (
	KindCore   Kind = "core"
	KindStacks Kind = "stacks"
	KindHeap   Kind = "heap"
)

// Runtime is what runs in a process, as far as dumping it goes.
type Runtime string

// The runtimes Detect names.
const (
	RuntimeNode   Runtime = "node"
	RuntimePython Runtime = "python"
	RuntimeGo     Runtime = "go"
	RuntimeJVM    Runtime = "jvm"
	RuntimeNative Runtime = "native"
)

// Options tune one Take.
type Options struct {
	// AllowExit lets Take ask a Go program for its goroutines by
	// SIGQUIT, the only way the Go runtime prints them, which ends it.
	AllowExit bool
	// TempDir is where a core is written before it is compressed; put
	// it on the same filesystem as the store. "" is os.TempDir().
	TempDir string
	// Timeout bounds the whole dump; 0 is 2 minutes for a core and 30
	// seconds for stacks and heap.
	Timeout time.Duration
	// Output gives access to what the process writes to its stderr,
	// where a Go program prints its goroutines on SIGQUIT. Take calls it
	// once, before the signal: the reader it returns starts at the end of
	// the output captured so far. Take reads it to EOF after the process
	// has exited, so it should return EOF only once the process's output
	// has been captured in full, and it should not block once it has.
	// If the reader is an io.Closer, Take closes it. Only Go stacks use it.
	Output func() (io.Reader, error)
	// Path is the list of directories the tools (gcore, gdb, py-spy,
	// jcmd) are looked up in, as $PATH is; "" is $PATH. jcmd is looked
	// for beside the process's own java first.
	Path string
}

// Result says how a dump went.
type Result struct {
	Kind    Kind
	Runtime Runtime
	// Tool is what took the dump: "gcore", "node inspector", "py-spy",
	// "gdb py-bt", "gdb", "SIGQUIT" or "jcmd".
	Tool string
	// Exe is the process's executable (/proc/PID/exe), for loading a core.
	Exe string
	// BuildID is the GNU build id of Exe in hex, "" if it has none (Go's
	// linker writes none unless asked).
	BuildID string
	// Paused is how long the process was stopped, an upper bound: the
	// run time of the tool that stopped it (gcore, gdb, py-spy, jcmd),
	// from pause to resume for node's stacks, the snapshot's time for a
	// heap snapshot. 0 when the dump ended the process.
	Paused time.Duration
	// Ended is true when the dump ended the process by design (a Go
	// program's SIGQUIT).
	Ended bool
	// Format is the ending of the dump's file name: "core.gz", "txt" or
	// "heapsnapshot".
	Format string
	// Note is a remark on the dump for whoever reads it, such as node's
	// inspector left open on loopback because the app never yielded.
	Note string
}

// ErrExited says the process exited, before or during the dump.
var ErrExited = errors.New("process exited")

// MissingToolError says a tool the dump needs is not installed.
type MissingToolError struct {
	Tool    string
	Runtime Runtime
	Install string // what to install, and how
}

func (e *MissingToolError) Error() string {
	return fmt.Sprintf("%s not found (needed for a %s process): %s", e.Tool, e.Runtime, e.Install)
}

// UnsupportedError says a kind of dump is not available for a runtime,
// or not without an option.
type UnsupportedError struct {
	Kind    Kind
	Runtime Runtime
	Reason  string
	// NeedsAllowExit: the dump is possible, but only by ending the
	// process (Options.AllowExit).
	NeedsAllowExit bool
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("%s dump of a %s process: %s", e.Kind, e.Runtime, e.Reason)
}

const (
	defaultCoreTimeout = 2 * time.Minute
	defaultTimeout     = 30 * time.Second
)

// Take writes the dump of pid to w and says how it went. A process that
// exits before or during the dump is reported by an error wrapping
// ErrExited as soon as it exits.
func Take(ctx context.Context, kind Kind, pid int, w io.Writer, opt Options) (Result, error) {
	res := Result{Kind: kind}
	switch kind {
	case KindCore:
		res.Format = "core.gz"
	case KindStacks:
		res.Format = "txt"
	case KindHeap:
		res.Format = "heapsnapshot"
	default:
		return res, fmt.Errorf("unknown dump kind %q", kind)
	}
	ctx, cancel := context.WithTimeout(ctx, opt.timeout(kind))
	defer cancel()
	t, err := watch(ctx, pid)
	if err != nil {
		return res, err
	}
	defer t.stop()
	if res.Runtime, err = Detect(pid); err != nil {
		return res, err
	}
	switch kind {
	case KindCore:
		err = takeCore(ctx, t, w, opt, &res)
	case KindStacks:
		err = takeStacks(t, w, opt, &res)
	case KindHeap:
		err = takeHeap(t, w, &res)
	}
	if err != nil && t.exited() && !res.Ended {
		return res, fmt.Errorf("%s dump of pid %d: %w", kind, pid, ErrExited)
	}
	var unsupported *UnsupportedError
	var missing *MissingToolError
	if errors.As(err, &unsupported) || errors.As(err, &missing) {
		return res, err // they say what and which runtime already
	}
	if err != nil {
		return res, fmt.Errorf("%s dump of pid %d: %w", kind, pid, err)
	}
	return res, nil
}

func (o Options) timeout(kind Kind) time.Duration {
	switch {
	case o.Timeout > 0:
		return o.Timeout
	case kind == KindCore:
		return defaultCoreTimeout
	default:
		return defaultTimeout
	}
}

func (o Options) tempDir() string {
	if o.TempDir != "" {
		return o.TempDir
	}
	return os.TempDir()
}

// lookPath finds a tool in o.Path, or in $PATH when o.Path is "".
func (o Options) lookPath(name string) (string, error) {
	if o.Path == "" {
		return exec.LookPath(name)
	}
	for _, dir := range filepath.SplitList(o.Path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
