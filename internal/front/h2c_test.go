package front

import (
	"io"
	"net/http"
	"testing"
	"time"
)

// An h2c connection lives as long as its client keeps using it, as an
// HTTP/2 connection over TLS does: the read deadline the front set for
// the preface's head (HeadTimeout from the connection's start) must not
// outlive it, or every h2c connection is cut HeadTimeout after it opened,
// whatever it carries.
func TestH2COutlivesHeadTimeout(t *testing.T) {
	const headTimeout = 300 * time.Millisecond
	addr := limServe(t, protoStub(), Options{H2C: true, HeadTimeout: headTimeout})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true) // h2c with prior knowledge, and nothing else
	cc, err := tr.NewClientConn(t.Context(), "http", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	get := func() (string, error) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/p", nil)
		resp, err := cc.RoundTrip(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	if got, err := get(); err != nil || got != "HTTP/2.0 tls=no /p " {
		t.Fatalf("first request: %q, %v", got, err)
	}
	time.Sleep(3 * headTimeout) // the point of the test: the connection outlives HeadTimeout
	if got, err := get(); err != nil || got != "HTTP/2.0 tls=no /p " {
		t.Errorf("request %v after the connection opened (HeadTimeout %v): %q, %v; want it served on the same connection",
			3*headTimeout, headTimeout, got, err)
	}
}
