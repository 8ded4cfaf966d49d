package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// TestInterimNotSentToHTTP10: an app's 103 Early Hints is passed on to an
// HTTP/1.1 client, never to an HTTP/1.0 one, which would take it for the
// final answer and the real one for its body (RFC 9110 §15.2).
func TestInterimNotSentToHTTP10(t *testing.T) {
	t.Parallel()
	addr := testutil.ServeRaw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"+
				"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	})
	d := directWith(t, addr, protoOptions(t, "h1"), nil)
	for _, c := range []struct {
		proto    string
		wantHint bool
	}{{"HTTP/1.1", true}, {"HTTP/1.0", false}} {
		t.Run(c.proto, func(t *testing.T) {
			v := sendRaw(d.addr, "GET /x "+c.proto+"\r\nHost: x\r\nConnection: close\r\n\r\n")
			if v.err != nil {
				t.Fatal(v.err)
			}
			raw := string(v.raw)
			if got := strings.HasPrefix(raw, "HTTP/1.1 103 "); got != c.wantHint {
				t.Errorf("%s client: 103 first %v, want %v; got %.300q", c.proto, got, c.wantHint, raw)
			}
			if !strings.Contains(raw, "200 OK") || !strings.HasSuffix(raw, "\r\n\r\nok") {
				t.Errorf("%s client: no final 200 with the app's body: %.300q", c.proto, raw)
			}
		})
	}
}
