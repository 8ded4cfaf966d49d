package testutil

import (
	"bytes"
	"strings"
	"sync"
)

// LockedBuffer is a bytes.Buffer that goroutines other than the test's
// may write to while the test reads it: a child process's output as exec
// copies it, a server's log written after the test may have ended (when
// t.Log would panic).
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Tail is the last n bytes written, from a line's start.
func (l *LockedBuffer) Tail(n int) string {
	s := l.String()
	if len(s) > n {
		s = s[len(s)-n:]
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	return s
}
