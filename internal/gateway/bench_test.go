package gateway_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/tracing"
	"github.com/gatehouse/gatehouse/internal/tracing/otlptest"
)

// benchGateway serves gateway.New's handler on a real loopback listener in
// front of a pool of the given addresses, all ready.
func benchGateway(b *testing.B, engine string, addrs ...string) (string, *pool.Pool, []*pool.Member) {
	b.Helper()
	return benchGatewayWith(b, engine, gateway.Options{}, addrs...)
}

// benchGatewayWith is benchGateway with the gateway's options.
func benchGatewayWith(b *testing.B, engine string, opts gateway.Options, addrs ...string) (string, *pool.Pool, []*pool.Member) {
	b.Helper()
	cfg := config.Default()
	app := config.NewApp("web")
	app.Routes = config.PlainRoutes("/")
	cfg.Apps = map[string]*config.App{"web": app}
	cfg.Order = []string{"web"}
	p := pool.New("web", 1000)
	var ms []*pool.Member
	for i, a := range addrs {
		m := pool.NewMember("web-"+string(rune('1'+i)), a)
		p.Add(m)
		m.SetState(pool.Ready)
		ms = append(ms, m)
	}
	gw := gateway.New(cfg, map[string]*pool.Pool{"web": p}, opts)
	url := protoURL(engine, serve(b, engine, gw))
	b.Cleanup(func() {
		for _, m := range ms {
			p.Remove(m) // closes the gateway's upstream connections
		}
	})
	return url, p, ms
}

func backend(b *testing.B) string {
	b.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", "2")
		w.Write([]byte("ok"))
	}))
	b.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func benchClient(b *testing.B, proto string) *http.Client {
	if proto != "h1" {
		return protoClient(b, proto)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.Cleanup(c.CloseIdleConnections)
	return c
}

func get(b *testing.B, c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d, cause %q", resp.StatusCode, resp.Header.Get("Gatehouse-Cause"))
	}
}

// BenchmarkProxy is the hot path with no fault: client → gateway → app
// over keep-alive loopback connections, for each protocol the front
// speaks. allocs/op counts the client, the gateway and the backend
// together.
func BenchmarkProxy(b *testing.B) {
	for _, e := range frontProtocols {
		b.Run(e, func(b *testing.B) { benchProxy(b, e) })
	}
}

func benchProxy(b *testing.B, engine string) {
	srv, _, _ := benchGateway(b, engine, backend(b))
	c := benchClient(b, engine)
	url := srv + "/x"
	get(b, c, url)
	b.ReportAllocs()
	for b.Loop() {
		get(b, c, url)
	}
}

// BenchmarkProxyTraced is BenchmarkProxy with tracing on, every request
// sampled, its spans exported over OTLP/gRPC to a receiver in the
// process: allocs/op counts the spans' making and their export (on the
// batch processor's goroutine) as well.
func BenchmarkProxyTraced(b *testing.B) {
	for _, e := range frontProtocols {
		b.Run(e, func(b *testing.B) {
			rcv := otlptest.Start(b)
			tc := config.NewTracing()
			tc.Endpoint = rcv.GRPCAddr()
			tr, err := tracing.New(tc, tracing.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { tr.Shutdown(context.Background()) })
			srv, _, _ := benchGatewayWith(b, e, gateway.Options{Tracer: tr}, backend(b))
			c := benchClient(b, e)
			url := srv + "/x"
			get(b, c, url)
			b.ReportAllocs()
			for b.Loop() {
				get(b, c, url)
			}
		})
	}
}

// BenchmarkProxyParallel is the hot path under concurrency.
func BenchmarkProxyParallel(b *testing.B) {
	srv, _, _ := benchGateway(b, "h1", backend(b))
	c := benchClient(b, "h1")
	url := srv + "/x"
	get(b, c, url)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			get(b, c, url)
		}
	})
}

// BenchmarkRetryPath: every request's first attempt is refused (a dead
// port), the retry on the live member succeeds.
func BenchmarkRetryPath(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	srv, p, ms := benchGateway(b, "h1", dead, backend(b))
	// Hold one in-flight slot on the live member so that the dead one,
	// least loaded, is always picked first.
	if m := p.Pick([]*pool.Member{ms[0]}); m != ms[1] {
		b.Fatalf("picked %v", m)
	}
	c := benchClient(b, "h1")
	url := srv + "/x"
	b.ReportAllocs()
	for b.Loop() {
		ms[0].ClearEjection()
		get(b, c, url)
	}
}

// BenchmarkStatic is a static route's file (1 KiB and 1 MiB) over
// keep-alive connections, for each protocol the front speaks.
func BenchmarkStatic(b *testing.B) {
	root := b.TempDir()
	for name, size := range map[string]int{"1k.txt": 1 << 10, "1m.bin": 1 << 20} {
		if err := os.WriteFile(filepath.Join(root, name), bytes.Repeat([]byte("g"), size), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, engine := range frontProtocols {
		cfg := config.Default()
		app := config.NewApp("web")
		app.Routes = []config.Route{{Match: "/", Static: &config.Static{Root: root, Index: []string{"index.html"}}}}
		cfg.Apps = map[string]*config.App{"web": app}
		cfg.Order = []string{"web"}
		gw := gateway.New(cfg, map[string]*pool.Pool{"web": pool.New("web", 1000)}, gateway.Options{})
		url := protoURL(engine, serve(b, engine, gw))
		c := benchClient(b, engine)
		for _, f := range []string{"1k.txt", "1m.bin"} {
			b.Run(engine+"/"+f, func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						get(b, c, url+"/"+f)
					}
				})
			})
		}
	}
}
