//go:build race

package peek

import "syscall"

// In a race build a Read's read and a send are package syscall's, as
// net.Conn's are: they tell the race detector what the kernel wrote into
// a buffer or read from it, and that a read comes after the write that
// sent what it read. A raw syscall tells it nothing: a buffer reused
// while a send still reads it would go unseen, and state handed from one
// goroutine to another over a connection would be reported as raced.
// They go through the runtime's syscall bookkeeping, which only the raw
// calls' speed was spared.
func sysRead(fd uintptr, b []byte) (uintptr, syscall.Errno) {
	n, err := syscall.Read(int(fd), b)
	return uintptr(n), errnoOf(err)
}

func sysSend(fd uintptr, b []byte) (uintptr, syscall.Errno) {
	n, err := syscall.Write(int(fd), b)
	return uintptr(n), errnoOf(err)
}

func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return err.(syscall.Errno)
}
