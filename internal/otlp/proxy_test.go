package otlp_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/otlp"
	"github.com/gatehouse/gatehouse/internal/tracing/otlptest"
)

// proxiedHost is the receivers' name behind the test proxy, which takes
// it for 127.0.0.1: Go never proxies a loopback address or localhost.
// Nothing else resolves it.
const proxiedHost = "collector.test"

// connectProxy is an HTTP proxy that tunnels CONNECT requests (to
// proxiedHost's ports on 127.0.0.1, or as asked), and refuses anything
// else; it counts the connections made to it and the CONNECTs.
type connectProxy struct {
	srv             *httptest.Server
	conns, connects atomic.Int64

	mu      sync.Mutex
	closed  bool
	tunnels map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// startConnectProxy starts a proxy on loopback; it stops, its tunnels
// closed, when the test ends.
func startConnectProxy(t *testing.T) *connectProxy {
	t.Helper()
	p := &connectProxy{tunnels: map[net.Conn]struct{}{}}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			p.conns.Add(1)
		}
	}
	p.srv.Start()
	t.Cleanup(p.close)
	return p
}

func (p *connectProxy) url() string { return p.srv.URL }

func (p *connectProxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "otlp test proxy: CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	p.connects.Add(1)
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if host == proxiedHost {
		host = "127.0.0.1"
	}
	upstream, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), 5*time.Second)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	c, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.Close()
		upstream.Close()
		return
	}
	p.tunnels[c], p.tunnels[upstream] = struct{}{}, struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		defer func() {
			p.mu.Lock()
			delete(p.tunnels, c)
			delete(p.tunnels, upstream)
			p.mu.Unlock()
		}()
		if _, err := io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
			c.Close()
			upstream.Close()
			return
		}
		pipe(c, buf.Reader, upstream)
	}()
}

func (p *connectProxy) close() {
	p.srv.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.tunnels {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// pipe copies a (read through ar) to b and b to a until either ends,
// then closes both.
func pipe(a net.Conn, ar io.Reader, b net.Conn) {
	var wg sync.WaitGroup
	wg.Go(func() {
		io.Copy(b, ar)
		a.Close()
		b.Close()
	})
	io.Copy(a, b)
	a.Close()
	b.Close()
	wg.Wait()
}

// TestProxyOfTheEnvironment: an https:// endpoint is reached through
// the proxy HTTPS_PROXY (or https_proxy) names, over either protocol,
// unless NO_PROXY names its host.
func TestProxyOfTheEnvironment(t *testing.T) {
	p := newPKI(t)
	tests := []struct {
		name string
		// env is the environment, given the proxy's URL.
		env func(proxy string) map[string]string
		// wantConnects is the CONNECTs the proxy is to see; when 0, the
		// export goes straight to proxiedHost, which does not resolve.
		wantConnects int64
	}{
		{
			name:         "HTTPS_PROXY",
			env:          func(proxy string) map[string]string { return map[string]string{"HTTPS_PROXY": proxy} },
			wantConnects: 1,
		},
		{
			name:         "https_proxy",
			env:          func(proxy string) map[string]string { return map[string]string{"https_proxy": proxy} },
			wantConnects: 1,
		},
		{
			name: "HTTPS_PROXY over https_proxy",
			env: func(proxy string) map[string]string {
				return map[string]string{"HTTPS_PROXY": proxy, "https_proxy": "http://" + otlptest.ClosedPort(t)}
			},
			wantConnects: 1,
		},
		{
			name: "NO_PROXY naming the host",
			env: func(proxy string) map[string]string {
				return map[string]string{"HTTPS_PROXY": proxy, "NO_PROXY": proxiedHost}
			},
		},
		{
			name: "no_proxy naming the host",
			env: func(proxy string) map[string]string {
				return map[string]string{"https_proxy": proxy, "no_proxy": proxiedHost}
			},
		},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				var w tlsWatch
				r := otlptest.StartTLS(t, w.config(p, false))
				proxy := startConnectProxy(t)
				addr := r.GRPCAddr()
				if tr.protocol == otlp.HTTP {
					addr = r.HTTPURL()[len("https://"):]
				}
				_, port, err := net.SplitHostPort(addr)
				if err != nil {
					t.Fatal(err)
				}
				env := tt.env(proxy.url())
				env["OTEL_EXPORTER_OTLP_CERTIFICATE"] = p.caFile
				endpoint := "https://" + net.JoinHostPort(proxiedHost, port)
				x := newExporter(t, otlp.Options{Protocol: tr.protocol, Endpoint: endpoint, Getenv: environ(env)})
				timeout := 10 * time.Second
				if tt.wantConnects == 0 {
					// The export cannot succeed: it need not take long.
					timeout = time.Second
				}
				_, err = export(x, timeout, oneSpan())
				if n := proxy.connects.Load(); n != tt.wantConnects {
					t.Errorf("the proxy saw %d CONNECTs, want %d", n, tt.wantConnects)
				}
				if tt.wantConnects == 0 {
					t.Logf("ExportSpans without the proxy: %v", err)
					return
				}
				if err != nil {
					t.Fatalf("ExportSpans to %s through the proxy: %v", endpoint, err)
				}
				if n := r.Received(tr.name); n != 1 {
					t.Errorf("the receiver took %d requests, want 1", n)
				}
			})
		}
	}
}

// TestPlaintextGRPCIsNotProxied: a plaintext gRPC endpoint (HTTP/2 with
// prior knowledge, which a proxy would take for HTTP/1) goes straight to
// the receiver, whatever HTTP_PROXY and HTTPS_PROXY say.
func TestPlaintextGRPCIsNotProxied(t *testing.T) {
	ip := notLoopback(t)
	for _, scheme := range []string{"", "http://"} {
		t.Run("endpoint "+scheme+"host:port", func(t *testing.T) {
			r := otlptest.Start(t)
			proxy := startConnectProxy(t)
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
			if err != nil {
				t.Fatal(err)
			}
			// The receiver, at an address Go would proxy.
			fwd := startRawOn(t, ln, func(c net.Conn) {
				up, err := net.DialTimeout("tcp", r.GRPCAddr(), 5*time.Second)
				if err != nil {
					return
				}
				pipe(c, c, up)
			})
			env := environ(map[string]string{"HTTP_PROXY": proxy.url(), "HTTPS_PROXY": proxy.url()})
			x := newExporter(t, otlp.Options{Protocol: otlp.GRPC, Endpoint: scheme + fwd.addr(), Getenv: env})
			_, err = export(x, 10*time.Second, oneSpan())
			if n := proxy.conns.Load(); n != 0 {
				t.Errorf("the proxy had %d connections, want 0", n)
			}
			if err != nil {
				t.Fatalf("ExportSpans: %v", err)
			}
			if n := r.Received("grpc"); n != 1 {
				t.Errorf("the receiver took %d requests, want 1", n)
			}
		})
	}
}

// notLoopback is an address of this host's that is not loopback (so
// that Go would proxy it) and can be listened on; the test is skipped
// when the host has none.
func notLoopback(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ipn.IP.String(), "0"))
		if err != nil {
			continue
		}
		ln.Close()
		return ipn.IP.String()
	}
	t.Skip("this host has no address but loopback, which Go never proxies")
	return ""
}
