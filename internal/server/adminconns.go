package server

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// adminConns bounds the admin listener's connections served at once: it
// is for operators and their tools, and a client that opens connections
// by the thousand must not take gatehouse's descriptors.
const adminConns = 128

// adminListener is the admin listener, with at most adminConns
// connections served at once (more wait in the kernel's queue).
func adminListener(ln net.Listener) net.Listener {
	return &limitedListener{Listener: ln, slots: make(chan struct{}, adminConns)}
}

// limitedListener is netutil.LimitListener with connections that say
// what they wrap (NetConn, as tls.Conn does): gatehouse exec watches its
// client's socket for a hang-up while the command's stdin is full.
type limitedListener struct {
	net.Listener
	slots chan struct{}
}

func (l *limitedListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

// limitedConn gives its slot back once, when it is closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// NetConn is the connection under the limit.
func (c *limitedConn) NetConn() net.Conn { return c.Conn }

// boundAdmin gives the admin server the public listener's limits on a
// client: its head must come within head_timeout, a connection idle
// after an answer is closed after keepalive_timeout, and each read of a
// request body waits at most body_timeout. (No bound on writes: the log
// and dashboard streams are long answers by design.)
func boundAdmin(srv *http.Server, l config.Limits) {
	srv.ReadHeaderTimeout = l.HeadTimeout.D()
	srv.IdleTimeout = l.KeepaliveTimeout.D()
	h, d := srv.Handler, l.BodyTimeout.D()
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &boundedBody{ReadCloser: r.Body, rc: http.NewResponseController(w), d: d}
		}
		h.ServeHTTP(w, r)
	})
}

// boundedBody gives each read of a request body d to return: a client
// that stalls its upload holds the connection no longer.
type boundedBody struct {
	io.ReadCloser
	rc *http.ResponseController
	d  time.Duration
}

func (b *boundedBody) Read(p []byte) (int, error) {
	b.rc.SetReadDeadline(time.Now().Add(b.d))
	return b.ReadCloser.Read(p)
}
