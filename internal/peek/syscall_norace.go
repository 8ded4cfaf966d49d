//go:build !race

package peek

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sysRead is a Read's read(2), sysSend a Write's or SendWait's send, both
// raw (see the package's doc): the socket is non-blocking, so neither
// waits. A race build makes them otherwise (syscall_race.go).
func sysRead(fd uintptr, b []byte) (uintptr, syscall.Errno) {
	n, _, errno := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return n, errno
}

func sysSend(fd uintptr, b []byte) (uintptr, syscall.Errno) {
	n, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT, 0, 0)
	return n, errno
}
