package certs_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/certs"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/acmetest"
)

// Every Manager's Run has returned, every server is closed: nothing but
// Pebble's VA loop (which cannot be stopped) may be left. The tests wait
// on CAs and file watchers far more than they compute.
func TestMain(m *testing.M) {
	testutil.WaitingParallel(16)
	goleak.VerifyTestMain(m, acmetest.IgnoreGoroutines...)
}

// edge is the pair of listeners a Manager serves, as gatehouse's: a
// plain one answering HTTP-01 and an HTTPS one (h2-less HTTP/1.1 here)
// answering "hello".
type edge struct {
	httpLn, tlsLn net.Listener
	mgr           atomic.Pointer[certs.Manager]
	// httpAnswers and alpnConns count the CA's validations of each kind.
	httpAnswers, alpnConns atomic.Int64
	// plainAnswer answers HTTP-01 with HTTPChallengeAnswer, as a server
	// that is not net/http would, instead of HandleHTTPChallenge.
	plainAnswer atomic.Bool
}

func startEdge(t *testing.T) *edge {
	t.Helper()
	e := &edge{}
	var err error
	if e.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if e.tlsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	plain := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := e.mgr.Load()
		if m != nil && e.plainAnswer.Load() && r.Method == http.MethodGet {
			if body, ok := m.HTTPChallengeAnswer(r.Host, r.URL.Path); ok {
				e.httpAnswers.Add(1)
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, body)
				return
			}
		} else if m != nil && m.HandleHTTPChallenge(w, r) {
			e.httpAnswers.Add(1)
			return
		}
		http.Error(w, "not a challenge", http.StatusNotFound)
	})}
	secure := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello")
		}),
		TLSConfig: &tls.Config{
			// The Manager of the moment: a test may replace it, as a
			// restart of gatehouse would.
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				c := e.mgr.Load().TLSConfig()
				c.NextProtos = append(c.NextProtos, "http/1.1")
				return c, nil
			},
		},
		// The CA's TLS-ALPN-01 handshakes are not HTTP.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){
			certs.ACMETLSProtocol: func(_ *http.Server, c *tls.Conn, _ http.Handler) {
				e.alpnConns.Add(1)
				c.Close()
			},
		},
		ErrorLog: quietLog(),
	}
	plain.ErrorLog = quietLog()
	var wg sync.WaitGroup
	wg.Go(func() { plain.Serve(e.httpLn) })
	wg.Go(func() { secure.Serve(tls.NewListener(e.tlsLn, secure.TLSConfig)) })
	t.Cleanup(func() {
		plain.Close()
		secure.Close()
		wg.Wait()
	})
	return e
}

func (e *edge) httpPort() int { return e.httpLn.Addr().(*net.TCPAddr).Port }
func (e *edge) tlsPort() int  { return e.tlsLn.Addr().(*net.TCPAddr).Port }

// run starts m's Run and stops it (waiting for its return) when the test
// ends or stop is called.
func run(t *testing.T, m *certs.Manager) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v, want nil", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("Run did not return within 20s of its context ending")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// handshake connects to addr as a browser would for name, verifying the
// chain against roots, and returns the leaf it was served.
func handshake(addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{ServerName: name, RootCAs: roots}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// served polls until a verified handshake succeeds and returns its leaf.
func served(t *testing.T, addr, name string, roots *x509.CertPool, within time.Duration) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	testutil.WaitForNil(t, within, "a verified handshake for "+name+" at "+addr, func() (err error) {
		leaf, err = handshake(addr, name, roots)
		return err
	})
	return leaf
}

// get sends one request on an established connection and returns the
// status line.
func get(c net.Conn, host string) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host); err != nil {
		return "", err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.Status, nil
}

// eventsOf are the events of type typ, oldest first.
func eventsOf(ev *telemetry.Events, typ string) []telemetry.Event {
	var out []telemetry.Event
	for _, e := range ev.Since(time.Time{}) {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for the first event of type typ.
func waitEvent(t *testing.T, ev *telemetry.Events, typ string, within time.Duration) telemetry.Event {
	t.Helper()
	testutil.WaitForNil(t, within, "a "+typ+" event", func() error {
		if len(eventsOf(ev, typ)) == 0 {
			return fmt.Errorf("events: %v", ev.Since(time.Time{}))
		}
		return nil
	})
	return eventsOf(ev, typ)[0]
}

func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }
