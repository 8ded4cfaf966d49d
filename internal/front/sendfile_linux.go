package front

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// sendFile sends at most lr.N bytes of lr's file, from its offset, to tc
// by sendfile(2), and takes what it sent off lr.N. The write deadline is
// renewed whenever a wait for the socket follows progress, so timeout
// bounds a wait in which the client takes nothing, as it bounds a Write,
// not the time a slow client takes for the whole file. handled false:
// nothing was sent, and the file cannot go by sendfile (the caller
// copies it).
func sendFile(tc *net.TCPConn, lr *io.LimitedReader, timeout time.Duration) (written int64, err error, handled bool) {
	f, ok := lr.R.(*os.File)
	if !ok {
		return 0, nil, false
	}
	src, err := f.SyscallConn()
	if err != nil {
		return 0, nil, false
	}
	dst, err := tc.SyscallConn()
	if err != nil {
		return 0, nil, false
	}
	handled = true
	var serr error
	cerr := src.Control(func(sfd uintptr) {
		tc.SetWriteDeadline(time.Now().Add(timeout))
		serr = dst.Write(func(dfd uintptr) bool {
			progressed := false
			for lr.N > 0 {
				n, e := syscall.Sendfile(int(dfd), int(sfd), nil, int(min(lr.N, 1<<30)))
				if n > 0 {
					written += int64(n)
					lr.N -= int64(n)
					progressed = true
				}
				switch e {
				case nil:
					if n == 0 {
						return true // the file is shorter than said
					}
				case syscall.EINTR:
				case syscall.EAGAIN:
					if progressed {
						tc.SetWriteDeadline(time.Now().Add(timeout))
					}
					return false // wait until the socket takes more
				case syscall.ENOSYS, syscall.EINVAL, syscall.EOPNOTSUPP:
					// A file that sendfile cannot read from.
					handled = written > 0
					err = e
					return true
				default:
					err = e
					return true
				}
			}
			return true
		})
	})
	if !handled {
		return 0, nil, false
	}
	if err == nil {
		err = serr
	}
	if err == nil {
		err = cerr
	}
	return written, err, true
}
