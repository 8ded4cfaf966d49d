package procdump

import (
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// pythonExe matches the names CPython's interpreter is installed under
// (python, python3, python3.11, python3.11d).
var pythonExe = regexp.MustCompile(`^python[0-9]*(\.[0-9]+)?d?$`)

// Detect names the runtime of a running process from its executable's
// name (node, python3.x, java) or, for Go, the build information the Go
// linker writes into every binary.
func Detect(pid int) (Runtime, error) {
	exe, err := exePath(pid)
	if err != nil {
		return "", err
	}
	base := filepath.Base(exe)
	switch {
	case base == "node" || base == "nodejs":
		return RuntimeNode, nil
	case pythonExe.MatchString(base):
		return RuntimePython, nil
	case base == "java":
		return RuntimeJVM, nil
	}
	if _, err := buildinfo.ReadFile(procPath(pid, "exe")); err == nil {
		return RuntimeGo, nil
	}
	return RuntimeNative, nil
}

// exePath is the target of /proc/PID/exe, without the " (deleted)" the
// kernel appends when the file was replaced since the process started.
func exePath(pid int) (string, error) {
	exe, err := os.Readlink(procPath(pid, "exe"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("pid %d: %w", pid, ErrExited)
	}
	if err != nil {
		return "", fmt.Errorf("executable of pid %d: %w", pid, err)
	}
	return strings.TrimSuffix(exe, " (deleted)"), nil
}

func procPath(pid int, name string) string {
	return "/proc/" + strconv.Itoa(pid) + "/" + name
}
