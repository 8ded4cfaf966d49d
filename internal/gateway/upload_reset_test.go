package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/config"
)

// An HTTP/2 client that resets its stream in the middle of its upload
// went away, whatever the reset's code: the request is logged
// client_closed, as an HTTP/1.1 client's that closes its connection
// mid-body is, not bad_request. Clients differ in the code they reset
// with (curl's nghttp2 says STREAM_CLOSED, others INTERNAL_ERROR), and
// none of them makes the request malformed. Both the body kept for a
// retry and one streamed past the limit.
func TestUploadResetByClientIsClientClosed(t *testing.T) {
	t.Parallel()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.Copy(io.Discard, r.Body) }))
	t.Cleanup(app.Close)
	d := directWith(t, strings.TrimPrefix(app.URL, "http://"), h2Opts(false), func(a *config.App) { a.RetryBodyLimit = 8 << 10 })
	for _, code := range []http2.ErrCode{http2.ErrCodeCancel, http2.ErrCodeNo, http2.ErrCodeInternal, http2.ErrCodeStreamClosed,
		http2.ErrCodeProtocol, http2.ErrCodeRefusedStream} {
		for _, c := range []struct {
			name     string
			declared int // the body's content-length; 0: none
		}{{"kept for a retry", 6000}, {"streamed", 100000}, {"of no declared length", 0}} {
			t.Run(fmt.Sprintf("%v %s", code, c.name), func(t *testing.T) {
				h, err := dialH2(t, d.addr, false)
				if err != nil {
					t.Fatal(err)
				}
				h.start()
				path := fmt.Sprintf("/upload-%v-%d", code, c.declared)
				var fields []string
				if c.declared > 0 {
					fields = []string{"content-length", fmt.Sprint(c.declared)}
				}
				h.headers(1, false, h.req("POST", path, fields...)...)
				h.data(1, false, []byte(strings.Repeat("a", 4000)))
				h.frame(func(w *http2.Framer) error { return w.WriteRSTStream(1, code) })
				if e := d.entry(t, path); e.Cause != "client_closed" || e.Status != 499 {
					t.Errorf("access entry: cause %q status %d (%s), want client_closed 499", e.Cause, e.Status, e.Detail)
				}
			})
		}
	}
	d.waitIdle(t)
}
