// Package fds owns handing a descriptor to a child process without
// changing it for this one.
package fds

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dup duplicates c's descriptor (a listening socket, a pipe) into a file
// for a child's ExtraFiles. Not through (*net.TCPListener).File or the
// *os.File itself: exec puts the files it passes into blocking mode, and
// the mode belongs to the open file, which this process still uses with
// the runtime's poller (accepts, reads with a deadline). The duplicate is
// close-on-exec until exec passes it on.
func Dup(c syscall.Conn, name string) (*os.File, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var derr error
	if err := rc.Control(func(fd uintptr) { nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, derr
	}
	return os.NewFile(uintptr(nfd), name), nil
}
