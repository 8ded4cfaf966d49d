package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// TestUntypedAnswerNotSniffed: an answer the app sent without a
// Content-Type reaches the client without one, over every protocol. A
// type guessed from the body would turn an app's untyped upload into
// text/html (stored XSS) whatever X-Content-Type-Options says, and over
// HTTP/2 alone if only x/net guessed.
func TestUntypedAnswerNotSniffed(t *testing.T) {
	t.Parallel()
	const body = "<html><script>alert(1)</script></html>"
	addr := testutil.ServeRaw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 38\r\n\r\n"+body)
		}
	})
	forEachFrontProtocolInParallel(t, func(t *testing.T, proto string) {
		d := directWith(t, addr, protoOptions(t, proto), nil)
		resp, err := protoClient(t, proto).Get(protoURL(proto, d.addr) + "/upload/1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != body {
			t.Fatalf("body %q, want the app's", b)
		}
		if ct, ok := resp.Header["Content-Type"]; ok {
			t.Errorf("Content-Type %q: the app sent none, and none may be guessed", ct)
		}
	})
}
