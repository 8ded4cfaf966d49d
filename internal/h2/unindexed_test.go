package h2_test

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/h2"
)

// Fields whose values are new with every answer go out as literals the
// client's HPACK table never keeps; those that repeat are indexed.
func TestPerAnswerFieldsAreNotIndexed(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	ts := startServer(t, &h2.Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := n.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Request-Id", fmt.Sprintf("req-%d", n))
		w.Header().Set("Set-Cookie", fmt.Sprintf("s=%d", n))
		w.Header().Set("X-Powered-By", "tests")
		w.Header().Set("Content-Length", "2")
		w.Write([]byte("ok"))
	}), nil)
	c := dialRaw(t, ts)
	for i, id := range []uint32{1, 3} {
		c.get(id, "/")
		a := c.readAnswer(id)
		if len(a.blocks) != 1 {
			t.Fatalf("answer %d: %d header blocks", i, len(a.blocks))
		}
		never := map[string]bool{}
		for _, f := range a.blocks[0] {
			never[f.Name] = f.Sensitive
		}
		want := map[string]bool{
			":status": false, "content-type": false, "x-powered-by": false, "date": false,
			"x-request-id": true, "set-cookie": true, "content-length": true,
		}
		if d := cmp.Diff(want, never); d != "" {
			t.Errorf("answer %d: never-indexed by field (-want +got):\n%s", i, d)
		}
	}
}
