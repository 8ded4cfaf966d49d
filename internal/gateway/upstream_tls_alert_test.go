package gateway_test

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// alertingUpstream is a TLS 1.2 upstream that reads a whole request (and
// counts it: the app acted on it), then meets a corrupted record that a
// relay in front of it adds after the request's, and so ends the
// connection with a fatal alert (bad_record_mac) before answering. The
// handshake was over long before: the app saw the request.
func alertingUpstream(t *testing.T, cert tls.Certificate, seen *atomic.Int32) string {
	server := testutil.ServeRaw(t, func(c net.Conn) {
		defer c.Close()
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12})
		r, err := http.ReadRequest(bufio.NewReader(tc))
		if err != nil {
			return
		}
		io.Copy(io.Discard, r.Body)
		if r.Method == "POST" {
			seen.Add(1)
		}
		var b [1]byte
		tc.Read(b[:]) // the corrupted record: crypto/tls sends bad_record_mac
		// Held open until the gateway lets go, so that the alert, not a
		// close, ends the gateway's exchange.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c)
	})
	// The relay passes everything on, and after the client's first
	// application_data record, a copy of it with its last byte flipped.
	return testutil.ServeRaw(t, func(c net.Conn) {
		defer c.Close()
		s, err := net.Dial("tcp", server)
		if err != nil {
			return
		}
		defer s.Close()
		go io.Copy(c, s)
		injected := false
		for {
			var hdr [5]byte
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
			if _, err := io.ReadFull(c, body); err != nil {
				return
			}
			s.Write(append(hdr[:], body...))
			if hdr[0] == 23 && !injected {
				injected = true
				bad := append(hdr[:], body...)
				bad[len(bad)-1] ^= 0xff
				s.Write(bad)
			}
		}
	})
}

// An alert that ends a fresh TLS 1.2 connection after the request was
// written (and read, and acted on, by the app) is not "never sent": the
// POST is not retried on another upstream (it was, as upstream_tls).
func TestPostNotRetriedAfterPostHandshakeAlert(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "Test CA")
	cert := ca.Issue(t, testutil.Leaf{Names: []string{"127.0.0.1"}})
	var seen atomic.Int32
	cfg, app := harness.FaultApp(t, 1)
	app.Command = nil
	app.Upstreams = []string{alertingUpstream(t, cert, &seen), alertingUpstream(t, cert, &seen)}
	app.UpstreamTLS = &config.UpstreamTLS{CAFile: ca.File(t)}
	app.Health.Path = "" // a handshake probe
	app.HoldTimeout = config.Duration(300 * time.Millisecond)
	g := harness.Start(t, cfg)
	waitReady(t, g, 2)
	c := newClient(t, g, 10*time.Second)
	r := c.do(req{method: "POST", path: "/pay", body: "charge=100"})
	e, _ := accessFor(t, g, r.id)
	t.Logf("answer %d %s; attempts %d, retried %v", r.status, r.cause, e.Attempts, e.RetriedCauses)
	if n := seen.Load(); n != 1 {
		t.Errorf("the upstreams acted on the POST %d times, want 1 (a request the app may have seen is not retried for POST)", n)
	}
}
