package process

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// NotExecutableError is a command whose program does not exist or may not
// be run: starting it again cannot help until the command, or the file,
// is fixed.
type NotExecutableError struct {
	// Program is the program as the command names it.
	Program string
	// Path is where it was looked for: the path itself, relative to the
	// app's dir; "" for a name not found on PATH.
	Path string
	// Err is syscall.ENOENT (no such file; a name not on PATH) or
	// syscall.EACCES (not executable, or a directory).
	Err error
}

func (e *NotExecutableError) Error() string {
	// The errno's text, as exec would say it, and its name, which is
	// what one searches for.
	switch {
	case e.Path == "":
		return fmt.Sprintf("executable %q not found on PATH: %v (ENOENT)", e.Program, e.Err)
	case errors.Is(e.Err, syscall.ENOENT):
		return fmt.Sprintf("executable %s: %v (ENOENT)", e.Path, e.Err)
	case errors.Is(e.Err, syscall.EACCES):
		return fmt.Sprintf("executable %s: %v, not a file with execute permission (EACCES)", e.Path, e.Err)
	}
	return fmt.Sprintf("executable %s: %v", e.Path, e.Err)
}

func (e *NotExecutableError) Unwrap() error { return e.Err }

// DirError is an app directory that does not exist, is not a directory,
// or may not be entered: like a NotExecutableError, starting again cannot
// help until the config, or the file system, is fixed.
type DirError struct {
	Dir string
	// Err is syscall.ENOENT, ENOTDIR or EACCES.
	Err error
}

func (e *DirError) Error() string {
	return fmt.Sprintf("app directory %s: %v (%s)", e.Dir, e.Err, errnoName(e.Err))
}

func (e *DirError) Unwrap() error { return e.Err }

func errnoName(err error) string {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return "ENOENT"
	case errors.Is(err, syscall.ENOTDIR):
		return "ENOTDIR"
	case errors.Is(err, syscall.EACCES):
		return "EACCES"
	}
	return "errno"
}

// CannotRun reports whether err says a command can never start as it
// stands (its program or its directory): such an instance is not
// restarted until the config or the files change.
func CannotRun(err error) bool {
	return errors.As(err, new(*NotExecutableError)) || errors.As(err, new(*DirError))
}

// checkDir is a *DirError when the app cannot start in dir: were it
// missing, exec would say the program was not found.
func checkDir(dir string) error {
	if dir == "" {
		return nil
	}
	fi, err := os.Stat(dir)
	switch {
	case err == nil && !fi.IsDir():
		return &DirError{Dir: dir, Err: syscall.ENOTDIR}
	case err == nil:
		if unix.Access(dir, unix.X_OK) != nil {
			return &DirError{Dir: dir, Err: syscall.EACCES}
		}
		return nil
	case errors.Is(err, syscall.ENOENT):
		return &DirError{Dir: dir, Err: syscall.ENOENT}
	case errors.Is(err, syscall.ENOTDIR):
		return &DirError{Dir: dir, Err: syscall.ENOTDIR}
	case errors.Is(err, syscall.EACCES):
		return &DirError{Dir: dir, Err: syscall.EACCES}
	}
	return nil // anything else is left to exec to report
}

// checkProgram finds the program argv runs (see Program) as exec would,
// on the PATH of env and relative to dir; a *NotExecutableError when it
// cannot be run, nil when it can or only a shell knows what it runs.
func checkProgram(argv []string, env []string, dir string) error {
	prog := Program(argv)
	if prog == "" {
		return nil
	}
	if !strings.Contains(prog, "/") {
		// As Spawn finds it: on the app's PATH, else on gatehouse's.
		if _, ok := lookPathIn(prog, env, dir); ok {
			return nil
		}
		if _, err := exec.LookPath(prog); err != nil {
			return &NotExecutableError{Program: prog, Err: syscall.ENOENT}
		}
		return nil
	}
	path := prog
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	err := unix.Access(path, unix.X_OK)
	if err == nil {
		if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
			err = syscall.EACCES
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ENOTDIR):
		return &NotExecutableError{Program: prog, Path: path, Err: syscall.ENOENT}
	case errors.Is(err, syscall.EACCES):
		return &NotExecutableError{Program: prog, Path: path, Err: syscall.EACCES}
	}
	// Anything else (EIO, ELOOP…) is left to exec to report.
	return nil
}
