package gateway_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// bufferApp answers /len?n= with n bytes of known length, /chunked?n= with
// n bytes in flushed pieces of 1000, after reading the request's body.
func bufferApp(t *testing.T) *netApp {
	return newNetApp(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		piece := []byte(strings.Repeat("b", 1000))
		if r.URL.Path == "/len" {
			w.Header().Set("Content-Length", strconv.Itoa(n))
		}
		for n > 0 {
			k := min(n, len(piece))
			if _, err := w.Write(piece[:k]); err != nil {
				return
			}
			if r.URL.Path == "/chunked" {
				w.(http.Flusher).Flush()
			}
			n -= k
		}
	})
}

// buffered is a gateway in front of app over h2c, with connBudget as
// each connection's buffer memory.
func buffered(t *testing.T, app *netApp, connBudget int64, adjust func(*config.App)) (*gateway.Gateway, *pool.Member, string) {
	gw, m := oneMember(t, app.addr, adjust, gateway.Options{})
	_, addr := serveWith(t, gw, front.Options{H2C: true, ConnectionBuffer: connBudget})
	return gw, m, addr
}

// neverReads is an h2c connection to addr whose streams' receive windows
// are 0: the gateway has each answer and can send none of its body.
func neverReads(t *testing.T, addr string) *h2Raw {
	h, err := dialH2(t, addr, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.start(); err != nil {
		t.Fatal(err)
	}
	if err := h.frame(func(w *http2.Framer) error {
		return w.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	}); err != nil {
		t.Fatal(err)
	}
	return h
}

// spillFiles counts the spill files this process has open.
func spillFiles() int {
	n := 0
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.Contains(target, "gatehouse-body-") {
			n++
		}
	}
	return n
}

// Streams whose client never reads hold the answers they were given in
// memory within the connection's budget (beyond it, in files), not the
// app; when the client goes, every byte of budget comes back and every
// spill file is closed. Serial: spillFiles counts the whole process's.
func TestBuffersOfAbandonedStreamsComeBack(t *testing.T) {
	app := bufferApp(t)
	const connBudget = 256 << 10
	gw, m, addr := buffered(t, app, connBudget, func(a *config.App) { a.Limits.ResponseBuffer = 256 << 10 })
	h := neverReads(t, addr)
	paths := []string{"/len?n=50000", "/len?n=200000", "/chunked?n=100000", "/chunked?n=5000", "/len?n=3000"}
	var ids []uint32
	for i := range 3 {
		for j, p := range paths {
			id := uint32(2*(i*len(paths)+j) + 1)
			ids = append(ids, id)
			if err := h.get(id, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if v, ok := h.await(h2Patience, func(v *h2View) bool {
		for _, id := range ids {
			if st := v.Streams[id]; st == nil || st.Status == 0 {
				return false
			}
		}
		return true
	}); !ok {
		t.Fatalf("not every stream has its head: %v", v.String())
	}
	// The answers held whole let the app go; those read ahead hold it
	// once the budget is spent.
	// Watched for a while, every 10ms: the answers read ahead keep
	// coming until the budget stops them.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range 20 {
		if used := gw.BufferedBytes(); used > connBudget {
			t.Fatalf("one connection's answers hold %d bytes of memory, over its budget %d", used, connBudget)
		}
		<-tick.C
	}
	if m.Inflight() > 3*2 {
		t.Errorf("%d requests hold the app; at most the 6 answers of unknown length may", m.Inflight())
	}
	h.close()
	testutil.WaitFor(t, 5*time.Second, "every buffer given back", func() bool { return gw.BufferedBytes() == 0 && spillFiles() == 0 })
}

// A request body read whole before the app was asked is let go once the
// app has answered: a client that uploads and then never reads its
// answer holds only that answer, not its upload too.
func TestHeldUploadLetGoOnceAnswered(t *testing.T) {
	t.Parallel()
	app := bufferApp(t)
	const upload = 600 << 10
	gw, _, addr := buffered(t, app, 4<<20, nil)
	h := neverReads(t, addr)
	// An answer longer than the stream's buffers: its writer waits for
	// the client.
	const answer = 100 << 10
	if err := h.headers(1, false, h.req("POST", "/len?n="+strconv.Itoa(answer), "content-length", strconv.Itoa(upload))...); err != nil {
		t.Fatal(err)
	}
	if err := h.sendBody(1, true, []byte(strings.Repeat("u", upload))); err != nil {
		t.Fatal(err)
	}
	if v, ok := h.await(h2Patience, func(v *h2View) bool { st := v.Streams[1]; return st != nil && st.Status != 0 }); !ok {
		t.Fatalf("no answer's head: %v", v.String())
	}
	if used := gw.BufferedBytes(); used >= upload {
		t.Errorf("%d bytes of memory held for an answer of %d bytes its client does not read: the upload's %d are still held", used, answer, upload)
	}
	h.close()
	testutil.WaitFor(t, 5*time.Second, "every buffer given back", func() bool { return gw.BufferedBytes() == 0 })
}
