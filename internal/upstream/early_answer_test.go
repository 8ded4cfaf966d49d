package upstream

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// zeros is an endless source of zero bytes, for an upload.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// An app that refuses an upload early (413, 401) and then neither reads
// the rest of it nor closes has answered: its answer, on the socket since
// before the write that stalled, is the attempt's, whether the upload's
// write then fails (the app closed) or times out (it did not).
func TestEarlyAnswerToAnUploadTheAppStopsReading(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		close bool // the app closes after its answer
	}{
		{"then closes", true},
		{"then holds the connection", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			release := make(chan struct{})
			defer close(release)
			a := rawApp(t, func(c net.Conn, br *bufio.Reader) {
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				io.WriteString(c, "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large")
				if tc.close {
					c.(*net.TCPConn).CloseWrite()
					return
				}
				<-release // neither reads the upload nor closes
			})
			p := NewPool(a.addr, time.Minute)
			defer p.Close()
			const size = 1 << 30 // far more than the sockets' buffers hold
			code, body, took, err := doBody(p, "/upload", io.LimitReader(zeros{}, size), size, 500*time.Millisecond)
			if err != nil || code != 413 || body != "too large" {
				t.Errorf("%d %q %v after %v; want the app's 413", code, body, err, took)
			}
		})
	}
}
