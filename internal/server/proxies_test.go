package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// With proxy_protocol, gatehouse's public listener reads the PROXY header
// of a trusted load balancer, and access.log names the client it gave.
func TestProxyProtocolListener(t *testing.T) {
	cfg, _ := harness.FaultApp(t, 1)
	cfg.TrustedProxies = []string{"127.0.0.1"}
	cfg.ProxyProtocol = true
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 20*time.Second)

	c, err := net.Dial("tcp", g.Srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "PROXY TCP4 203.0.113.7 127.0.0.1 5555 8080\r\nGET /?id=pp HTTP/1.1\r\nHost: a\r\nX-Request-Id: pp-1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var client string
	testutil.WaitFor(t, 5*time.Second, "the request in access.log", func() bool {
		b, _ := os.ReadFile(filepath.Join(cfg.DataDir, "access.log"))
		for line := range strings.Lines(string(b)) {
			var e struct {
				RequestID string `json:"request_id"`
				Client    string `json:"client"`
			}
			if json.Unmarshal([]byte(line), &e) == nil && e.RequestID == "pp-1" {
				client = e.Client
				return true
			}
		}
		return false
	})
	if client != "203.0.113.7" {
		t.Errorf("access.log client %q, want the PROXY header's 203.0.113.7", client)
	}

	// The load balancer's connection without a header is refused.
	c2, err := net.Dial("tcp", g.Srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c2, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	// (Closed or reset: either way, not answered.)
	if b, err := io.ReadAll(c2); len(b) > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("a trusted peer without a header got %q, %v; want the connection closed", b, err)
	}
}

// A reload that changes trusted_proxies or proxy_protocol says that they
// take a restart: the listener and the gateway keep the ones they started
// with.
func TestReloadTrustedProxiesNeedsRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gatehouse.yaml")
	bin, _ := json.Marshal(testutil.BuildBinary(t, testutil.FaultAppPkg))
	dd, _ := json.Marshal(filepath.Join(dir, "data"))
	write := func(extra string) {
		yaml := fmt.Sprintf("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\ndata_dir: %s\n%sapps:\n  web:\n    command: [%s]\n    health: {path: /healthz}\n", dd, extra, bin)
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 20*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, extra := range []string{"", "trusted_proxies: [10.0.0.0/8]\n", "trusted_proxies: [10.0.0.0/8]\nproxy_protocol: true\n"} {
		write(extra)
		var said []string
		if err := g.Srv.Reload(ctx, "web", func(format string, args ...any) { said = append(said, fmt.Sprintf(format, args...)) }); err != nil {
			t.Fatalf("reload with %q: %v", extra, err)
		}
		restart := slices.ContainsFunc(said, func(m string) bool {
			return strings.Contains(m, "trusted_proxies") && strings.Contains(m, "new gatehouse process")
		})
		if restart != (extra != "") {
			t.Errorf("reload with %q said %q", extra, said)
		}
	}
}
