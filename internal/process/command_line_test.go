package process

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// One argument holding a whole command line (gatehouse run -- 'CMD') is
// run as a command string would be; argv given as several arguments is
// started word for word, whatever the words hold.
func TestCommandLineInOneArgumentIsACommandString(t *testing.T) {
	for _, tc := range []struct {
		name     string
		in, want []string
	}{
		{"no syntax: direct", []string{"/usr/bin/python3 -m http.server 8000"}, []string{"/usr/bin/python3", "-m", "http.server", "8000"}},
		{"$PORT: sh execs it", []string{"/usr/bin/python3 -m uvicorn main:app --port $PORT"}, []string{"sh", "-c", "exec /usr/bin/python3 -m uvicorn main:app --port $PORT"}},
		{"blanks around", []string{"  ./app -v\t"}, []string{"./app", "-v"}},
		{"a list: sh as is", []string{"cd web && npm start"}, []string{"sh", "-c", "cd web && npm start"}},
		{"one word", []string{"./app"}, []string{"./app"}},
		{"several arguments: as given", []string{"/bin/echo", "a b", "$PORT"}, []string{"/bin/echo", "a b", "$PORT"}},
		{"two arguments with blanks: as given", []string{"./my app", "--x y"}, []string{"./my app", "--x y"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, CommandArgv(tc.in)); diff != "" {
				t.Errorf("CommandArgv(%q) (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

// A command whose program is missing or may not be executed fails to
// spawn with a NotExecutableError naming the path and the errno, found
// the same way through sh -c "exec …".
func TestCommandNotExecutableIsNamedWithItsErrno(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	for _, tc := range []struct {
		name     string
		argv     []string
		path     string
		errno    error
		contains string
	}{
		{"missing path", []string{missing, "-x"}, missing, syscall.ENOENT, "no such file or directory (ENOENT)"},
		{"missing path, run by sh", CommandArgv([]string{missing + " --port $PORT"}), missing, syscall.ENOENT, "no such file or directory (ENOENT)"},
		{"relative to dir", []string{"./missing"}, missing, syscall.ENOENT, "no such file or directory (ENOENT)"},
		{"not executable", []string{plain}, plain, syscall.EACCES, "permission denied, not a file with execute permission (EACCES)"},
		{"a directory", []string{dir}, dir, syscall.EACCES, "permission denied, not a file with execute permission (EACCES)"},
		{"not on PATH", []string{"gatehouse-no-such-program"}, "", syscall.ENOENT, `"gatehouse-no-such-program" not found on PATH: no such file or directory (ENOENT)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Spawn(Spec{Argv: tc.argv, Dir: dir, Env: []string{"PATH=/usr/bin:/bin", "PORT=1"}, Out: io.Discard,
				StatusPath: filepath.Join(t.TempDir(), "status")})
			var ne *NotExecutableError
			if !errors.As(err, &ne) {
				t.Fatalf("Spawn(%q) = %v; want a *NotExecutableError", tc.argv, err)
			}
			if ne.Path != tc.path || !errors.Is(err, tc.errno) {
				t.Errorf("Spawn(%q): path %q, errno %v; want %q, %v", tc.argv, ne.Path, ne.Err, tc.path, tc.errno)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.contains) || !strings.Contains(msg, tc.path) {
				t.Errorf("Spawn(%q) = %q; want it to name %q and say %q", tc.argv, msg, tc.path, tc.contains)
			}
		})
	}
}

// An app directory that does not exist, is a file, or may not be entered
// is a *DirError naming it (the command is not looked at): starting
// again cannot help, as CannotRun says.
func TestSpawnNamesADirThatCannotBeEntered(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(base, "locked")
	if err := os.Mkdir(locked, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir string
		errno     syscall.Errno
		says      string
	}{
		{"missing", filepath.Join(base, "gone"), syscall.ENOENT, "no such file or directory (ENOENT)"},
		{"under a file", filepath.Join(file, "sub"), syscall.ENOTDIR, "not a directory (ENOTDIR)"},
		{"a file", file, syscall.ENOTDIR, "not a directory (ENOTDIR)"},
	}
	if os.Geteuid() != 0 { // root enters any directory
		tests = append(tests, struct {
			name, dir string
			errno     syscall.Errno
			says      string
		}{"not searchable", locked, syscall.EACCES, "permission denied (EACCES)"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Spawn(Spec{Argv: []string{"true"}, Dir: tc.dir, Env: []string{"PATH=/usr/bin:/bin"}, Out: io.Discard,
				StatusPath: filepath.Join(t.TempDir(), "status")})
			var de *DirError
			if !errors.As(err, &de) || !errors.Is(err, tc.errno) || !CannotRun(err) {
				t.Fatalf("Spawn in %s = %v; want a *DirError with %v that CannotRun", tc.dir, err, tc.errno)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.dir) || !strings.Contains(msg, tc.says) {
				t.Errorf("Spawn in %s = %q; want it to name the directory and say %q", tc.dir, msg, tc.says)
			}
		})
	}
}
