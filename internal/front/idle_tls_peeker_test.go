//go:build linux

package front

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gatehouse/gatehouse/internal/peek"
)

// An idle keep-alive connection over TLS holds what TLS keeps between
// records and what the server keeps of any idle connection, and nothing
// it holds only to read and write: not its socket's Peeker (some 400
// bytes with its callbacks), which a parked connection makes anew when
// it wakes, as a plain one does. Each is then served again.
func TestIdleTLSConnHoldsNoPeeker(t *testing.T) {
	t.Parallel()
	const n = 10
	srvCfg, cliCfg := testTLS(t, "http/1.1")
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(echoStub{}, Options{TLS: srvCfg})
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ln) }()
	t.Cleanup(func() { s.Close(); <-done })
	cs := make([]*tls.Conn, n)
	for i := range cs {
		cs[i] = dialALPN(t, &net.Dialer{}, ln.Addr().String(), cliCfg, "http/1.1")
		getTLS(t, cs[i])
	}
	waitSettled(t, s, n)
	if holding, _ := countConns(s, holdsPeeker); holding != 0 {
		t.Errorf("%d of %d parked TLS connections hold a Peeker", holding, n)
	}
	for i, c := range cs {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if err := roundTripTLS(c); err != nil {
			t.Fatalf("connection %d, served again: %v", i, err)
		}
	}
}

// getTLS sends a GET on c and reads its answer, failing t if it cannot.
func getTLS(t *testing.T, c *tls.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if err := roundTripTLS(c); err != nil {
		t.Fatal(err)
	}
}

// roundTripTLS sends a GET on c and reads echoStub's answer to it.
func roundTripTLS(c *tls.Conn) error {
	req, _ := http.NewRequest("GET", "https://a/idle", nil)
	if err := req.Write(c); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	if err == nil && string(body) != "GET /idle" {
		err = fmt.Errorf("answered %q", body)
	}
	return err
}

// holdsPeeker reports whether fc's TLS socket holds a Peeker, in any of
// its fields: a *peek.Peeker, or an atomic.Pointer to one.
func holdsPeeker(fc *conn) bool {
	tc, ok := fc.c.(*tls.Conn)
	if !ok {
		return false
	}
	v := reflect.ValueOf(tc.NetConn().(*tlsSocket)).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
		switch p := f.Addr().Interface().(type) {
		case **peek.Peeker:
			if *p != nil {
				return true
			}
		case *atomic.Pointer[peek.Peeker]:
			if p.Load() != nil {
				return true
			}
		}
	}
	return false
}
