package peek

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// What a Peeker's Read and Write return, beside what the connection's
// own would have, on the same kind of socket in the same state: the
// bytes, the count, and the error (its kind and its text).
func TestReadWriteAsTheConnection(t *testing.T) {
	t.Parallel()
	type result struct {
		N       int
		Data    string
		Err     string
		EOF     bool
		Timeout bool
		Closed  bool
	}
	resultOf := func(b []byte, n int, err error) result {
		r := result{N: n, Data: string(b[:max(n, 0)])}
		if err != nil {
			r.Err = err.Error()
			r.EOF = err == io.EOF
			r.Timeout = errors.Is(err, os.ErrDeadlineExceeded)
			r.Closed = errors.Is(err, net.ErrClosed)
		}
		return r
	}
	// Each case readies a fresh pair (the peer, and the socket under
	// test) and does one operation with op, the Peeker's or the
	// connection's.
	type ops struct {
		read  func([]byte) (int, error)
		write func([]byte) (int, error)
	}
	tests := []struct {
		name string
		run  func(t *testing.T, peer, c net.Conn, op ops) result
	}{
		{"read what is there", func(t *testing.T, peer, c net.Conn, op ops) result {
			peer.Write([]byte("hello"))
			b := make([]byte, 16)
			n, err := op.read(b)
			return resultOf(b, n, err)
		}},
		{"read waits for what comes", func(t *testing.T, peer, c net.Conn, op ops) result {
			go func() { time.Sleep(20 * time.Millisecond); peer.Write([]byte("later")) }()
			b := make([]byte, 16)
			n, err := op.read(b)
			return resultOf(b, n, err)
		}},
		{"read after the peer closed", func(t *testing.T, peer, c net.Conn, op ops) result {
			peer.Close()
			b := make([]byte, 16)
			n, err := op.read(b)
			return resultOf(b, n, err)
		}},
		{"read after the peer reset", func(t *testing.T, peer, c net.Conn, op ops) result {
			peer.(*net.TCPConn).SetLinger(0)
			peer.Close()
			b := make([]byte, 16)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := op.read(b)
			return resultOf(b, n, err)
		}},
		{"read past its deadline", func(t *testing.T, peer, c net.Conn, op ops) result {
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			b := make([]byte, 16)
			n, err := op.read(b)
			return resultOf(b, n, err)
		}},
		{"read of a closed connection", func(t *testing.T, peer, c net.Conn, op ops) result {
			c.Close()
			b := make([]byte, 16)
			n, err := op.read(b)
			return resultOf(b, n, err)
		}},
		{"read into nothing", func(t *testing.T, peer, c net.Conn, op ops) result {
			n, err := op.read(nil)
			return resultOf(nil, n, err)
		}},
		{"write more than the socket holds", func(t *testing.T, peer, c net.Conn, op ops) result {
			big := bytes.Repeat([]byte("0123456789"), 1<<20)
			got := make(chan []byte, 1)
			go func() { b, _ := io.ReadAll(io.LimitReader(peer, int64(len(big)))); got <- b }()
			n, err := op.write(big)
			if b := <-got; !bytes.Equal(b, big) {
				t.Errorf("the peer read %d bytes, not the %d written", len(b), len(big))
			}
			return result{N: n, Err: errString(err)}
		}},
		{"write past its deadline", func(t *testing.T, peer, c net.Conn, op ops) result {
			c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			big := bytes.Repeat([]byte("x"), 64<<20) // more than both sockets' buffers hold
			// How much went before the deadline is the kernel's and the
			// scheduler's to say (on a busy machine the deadline may pass
			// before the first send): the error is what is compared.
			_, err := op.write(big)
			return resultOf(nil, 0, err)
		}},
		{"write after the peer reset", func(t *testing.T, peer, c net.Conn, op ops) result {
			peer.(*net.TCPConn).SetLinger(0)
			peer.Close()
			// The reset arrives with the peer's close; wait for it.
			if st := waitState(c); st != Closed {
				t.Fatalf("the peer's reset not seen: %v", st)
			}
			n, err := op.write([]byte("hello"))
			return resultOf(nil, n, err)
		}},
		{"write to a closed connection", func(t *testing.T, peer, c net.Conn, op ops) result {
			c.Close()
			n, err := op.write([]byte("hello"))
			return resultOf(nil, n, err)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got [2]result
			for i, raw := range []bool{false, true} {
				peer, c := loopbackPair(t)
				op := ops{read: c.Read, write: c.Write}
				if raw {
					p := New(c)
					op = ops{read: p.Read, write: p.Write}
				}
				got[i] = tt.run(t, peer, c, op)
				got[i].Err = sameAddrs(got[i].Err, c)
			}
			if diff := cmp.Diff(got[0], got[1]); diff != "" {
				t.Errorf("the connection's (-) and the Peeker's (+):\n%s", diff)
			}
		})
	}
}

// sameAddrs takes c's addresses out of an error's text, which differ
// from one pair to the next.
func sameAddrs(s string, c net.Conn) string {
	s = string(bytes.ReplaceAll([]byte(s), []byte(c.LocalAddr().String()), []byte("LOCAL")))
	return string(bytes.ReplaceAll([]byte(s), []byte(c.RemoteAddr().String()), []byte("REMOTE")))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// waitState waits until a look at c finds something other than Quiet.
func waitState(c net.Conn) State {
	p := New(c)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if st := p.Look(); st != Quiet {
			return st
		}
		time.Sleep(time.Millisecond)
	}
	return Quiet
}
