package gateway_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A request body read whole before the app was asked (in a temporary
// file: the connection's memory budget is too small for it) is sent whole
// again when the first instance cuts the request off after reading it.
// Serial: spillFiles counts the whole process's.
func TestHeldBodyResentWholeOnRetry(t *testing.T) {
	for _, tc := range []struct {
		name   string
		budget int64
		size   int
	}{
		{"in memory", 4 << 20, 300 << 10},
		{"in a file", 4 << 10, 300 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := make([]byte, tc.size)
			for i := range body {
				body[i] = byte(i * 7)
			}
			var n atomic.Int32
			serve := func(c net.Conn, br *bufio.Reader) {
				req, err := http.ReadRequest(br)
				if err != nil {
					return
				}
				got, _ := io.ReadAll(req.Body)
				if n.Add(1) == 1 {
					return // read it all, then cut the request off
				}
				sum := fmt.Sprintf("%d %x", len(got), sha256.Sum256(got))
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(sum), sum)
			}
			cfg := config.Default()
			app := config.NewApp("web")
			app.Routes = config.PlainRoutes("/")
			app.HoldTimeout = config.Duration(200 * time.Millisecond)
			app.RequestTimeout = config.Duration(5 * time.Second)
			cfg.Apps = map[string]*config.App{"web": app}
			cfg.Order = []string{"web"}
			p := pool.New("web", 100)
			for i := range 2 {
				m := pool.NewMember(fmt.Sprintf("web-%d", i+1), rawBackend(t, serve))
				p.Add(m)
				m.SetState(pool.Ready)
				t.Cleanup(func() { p.Remove(m) })
			}
			gw := gateway.New(cfg, map[string]*pool.Pool{"web": p}, gateway.Options{})
			_, addr := serveWith(t, gw, front.Options{ConnectionBuffer: tc.budget})
			req, _ := http.NewRequest("PUT", "http://"+addr+"/put", bytes.NewReader(body))
			resp, err := protoClient(t, "h1").Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := fmt.Sprintf("%d %x", len(body), sha256.Sum256(body))
			if resp.StatusCode != 200 || string(got) != want || n.Load() != 2 {
				t.Errorf("%d %q after %d attempts; want 200 %q after 2", resp.StatusCode, got, n.Load(), want)
			}
			testutil.WaitFor(t, 3*time.Second, "every buffer given back", func() bool { return gw.BufferedBytes() == 0 && spillFiles() == 0 })
		})
	}
}
