package process

import (
	"os/exec"
	"strings"
	"syscall"
)

// Find is the path a program named name runs from in a process of env
// and dir, looked up as Spawn looks up an instance's: on env's PATH, else
// gatehouse's; a name with a slash is taken relative to dir. A
// *NotExecutableError when it cannot be run. gatehouse exec runs its
// command with it, so that it finds what the instance's own command would.
func Find(name string, env []string, dir string) (string, error) {
	if err := checkProgram([]string{name}, env, dir); err != nil {
		return "", err
	}
	if strings.Contains(name, "/") {
		return name, nil // exec.Cmd takes a relative Path from its Dir
	}
	if p, ok := lookPathIn(name, env, dir); ok {
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", &NotExecutableError{Program: name, Err: syscall.ENOENT}
	}
	return p, nil
}
