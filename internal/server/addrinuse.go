package server

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/gatehouse/gatehouse/internal/procstat"
)

// heldBy is what a failed bind of addr adds to its error: which process
// holds the address, when the failure is that one does. The socket's
// owner is found through /proc, where another user's processes (unless
// gatehouse runs as root) and another PID namespace's are not visible.
func heldBy(addr string, err error) string {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return ""
	}
	if pid, name, ok := procstat.ListenerOf(addr); ok {
		return fmt.Sprintf(" (held by pid %d, %s)", pid, name)
	}
	return " (no process gatehouse can see holds it: another user's process, one in another container or PID namespace, or one that just exited)"
}
