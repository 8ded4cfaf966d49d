package gateway_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Through a running gatehouse, over HTTP/1.1 and HTTP/2, the app sees the
// client's other cookies and never the dashboard's session.
func TestAppNeverSeesSessionCookie(t *testing.T) {
	t.Parallel()
	forEachProtocolInParallel(t, func(t *testing.T, proto string) {
		g := startFaultOver(t, proto, 1, nil)
		c := newClient(t, g, 10*time.Second)
		r := c.do(req{path: "/headers", header: map[string]string{"Cookie": "theme=dark; gatehouse_session=0123abcd; lang=en"}})
		var h http.Header
		if err := json.Unmarshal([]byte(r.body), &h); err != nil {
			t.Fatalf("%v: %v", r, err)
		}
		if diff := cmp.Diff([]string{"theme=dark; lang=en"}, h["Cookie"]); diff != "" {
			t.Errorf("the app's Cookie (-want +got):\n%s", diff)
		}
	})
}
