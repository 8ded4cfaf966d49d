package otlp

import (
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHeadersFromTheEnvironment(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{in: "api-key=secret", want: map[string]string{"api-key": "secret"}},
		{in: " a = 1 , b=two%20words,, c=%2C%3D ", want: map[string]string{"a": "1", "b": "two words", "c": ",="}},
		{in: "x-tenant=a=b", want: map[string]string{"x-tenant": "a=b"}},
		// One header named twice, in any case: the later wins, as it
		// does for the same name twice, rather than whichever a map's
		// order puts last.
		{in: "Authorization=old,authorization=new", want: map[string]string{"authorization": "new"}},
		{in: "k=old,k=new", want: map[string]string{"k": "new"}},
		// Decoded, then trimmed: an encoded space at either end is
		// white space of the value like any other.
		{in: "k=%20v", want: map[string]string{"k": "v"}},
		{in: "k=v%20%09", want: map[string]string{"k": "v"}},
		{in: "k=%20two%20words%20", want: map[string]string{"k": "two words"}},
		{in: "novalue", wantErr: `"novalue": want key=value`},
		{in: "=v", wantErr: `"=v": want key=value`},
		{in: "bad key=v", wantErr: `"bad key=v": want key=value`},
		{in: "k=%zz", wantErr: `"k": invalid URL escape`},
		{in: "k=a%0Db", wantErr: `"k": a control character in the value`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseHeaders(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEnvironmentVariablesOfTracesWinOverTheGeneralOnes(t *testing.T) {
	e, err := readEnv(mapEnv{
		"OTEL_EXPORTER_OTLP_HEADERS":            "a=general",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":     "b=traces",
		"OTEL_EXPORTER_OTLP_COMPRESSION":        "none",
		"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "gzip",
	}.get)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"b": "traces"}, e.headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if !e.gzip {
		t.Error("not gzip, though OTEL_EXPORTER_OTLP_TRACES_COMPRESSION says so")
	}
}

func TestBadEnvironmentIsAnErrorNamingTheVariable(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     mapEnv
		wantErr string
		is      error
	}{
		{"compression", mapEnv{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, `OTEL_EXPORTER_OTLP_COMPRESSION: "zstd": want gzip or none`, nil},
		{"headers", mapEnv{"OTEL_EXPORTER_OTLP_TRACES_HEADERS": "oops"}, "OTEL_EXPORTER_OTLP_TRACES_HEADERS: ", nil},
		{"a missing CA file", mapEnv{"OTEL_EXPORTER_OTLP_CERTIFICATE": filepath.Join(dir, "none.pem")}, "OTEL_EXPORTER_OTLP_CERTIFICATE: ", fs.ErrNotExist},
		{"a CA file without PEM", mapEnv{"OTEL_EXPORTER_OTLP_CERTIFICATE": notPEM}, "holds no PEM certificate", nil},
		{"a client certificate without its key", mapEnv{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": notPEM}, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE is set without OTEL_EXPORTER_OTLP_CLIENT_KEY", nil},
		{"a client key without its certificate", mapEnv{"OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY": notPEM}, "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY is set without OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", nil},
		{"a client pair that is not one", mapEnv{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": notPEM, "OTEL_EXPORTER_OTLP_CLIENT_KEY": notPEM}, "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY: ", nil},
		{"HTTPS_PROXY that is no URL", mapEnv{"HTTPS_PROXY": "::bad"}, "HTTPS_PROXY: ", nil},
		{"https_proxy that is no URL", mapEnv{"https_proxy": "::bad"}, "HTTPS_PROXY: ", nil},
		{"HTTPS_PROXY of a scheme no proxy speaks", mapEnv{"HTTPS_PROXY": "ftp://x"}, `HTTPS_PROXY: "ftp://x": want a proxy URL`, nil},
		{"HTTP_PROXY of a scheme no proxy speaks", mapEnv{"HTTP_PROXY": "ftp://x"}, `HTTP_PROXY: "ftp://x": want a proxy URL`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Options{Protocol: GRPC, Endpoint: "127.0.0.1:4317", Getenv: tt.env.get})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v is not %v", err, tt.is)
			}
		})
	}
}

// TestProxyVariables: a proxy variable is a URL, or a host:port taken
// as http://, as net/http reads it; the exporter's requests go to the
// proxy it names.
func TestProxyVariables(t *testing.T) {
	const (
		https = "https://collector.example:4318/v1/traces"
		plain = "http://collector.example:4318/v1/traces"
	)
	tests := []struct {
		name string
		env  mapEnv
		url  string // the request's
		want string // its proxy; "" for none
	}{
		{"HTTPS_PROXY of host:port", mapEnv{"HTTPS_PROXY": "proxy.internal:3128"}, https, "http://proxy.internal:3128"},
		{"HTTPS_PROXY of an http:// URL", mapEnv{"HTTPS_PROXY": "http://proxy.internal:3128"}, https, "http://proxy.internal:3128"},
		{"HTTPS_PROXY of an https:// URL", mapEnv{"HTTPS_PROXY": "https://proxy.internal"}, https, "https://proxy.internal"},
		{"https_proxy of a socks5:// URL", mapEnv{"https_proxy": "socks5://proxy.internal:1080"}, https, "socks5://proxy.internal:1080"},
		{"HTTP_PROXY of host:port", mapEnv{"HTTP_PROXY": "proxy.internal:3128"}, plain, "http://proxy.internal:3128"},
		{"NO_PROXY naming the host", mapEnv{"HTTPS_PROXY": "proxy.internal:3128", "NO_PROXY": "collector.example"}, https, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := readEnv(tt.env.get)
			if err != nil {
				t.Fatalf("readEnv: %v", err)
			}
			req, err := http.NewRequest(http.MethodPost, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			u, err := e.proxy(req)
			if err != nil {
				t.Fatalf("the proxy of %s: %v", tt.url, err)
			}
			got := ""
			if u != nil {
				got = u.String()
			}
			if got != tt.want {
				t.Errorf("the proxy of %s is %q, want %q", tt.url, got, tt.want)
			}
		})
	}
}

func TestBadEndpointIsAnError(t *testing.T) {
	tests := []struct {
		protocol, endpoint, wantErr string
	}{
		{HTTP, "127.0.0.1:4318", "otlp: endpoint"},
		{HTTP, "ftp://x/v1/traces", "want an http:// or https:// URL"},
		{HTTP, "http://", "want an http:// or https:// URL"},
		{GRPC, "http://", "no host"},
		{"thrift", "127.0.0.1:1", `protocol "thrift"`},
	}
	for _, tt := range tests {
		t.Run(tt.protocol+" "+tt.endpoint, func(t *testing.T) {
			_, err := New(Options{Protocol: tt.protocol, Endpoint: tt.endpoint, Getenv: mapEnv{}.get})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestGRPCTargetReadsTheEndpoint: a gRPC endpoint is host:port
// (plaintext) or an http:// or https:// URL, its scheme in any case;
// without a port it is 443, and a URL's path is not the receiver's.
func TestGRPCTargetReadsTheEndpoint(t *testing.T) {
	type target struct {
		Host   string
		Secure bool
	}
	tests := []struct {
		endpoint string
		want     target
		wantErr  string
	}{
		{endpoint: "h:4317", want: target{"h:4317", false}},
		{endpoint: "[::1]:4317", want: target{"[::1]:4317", false}},
		{endpoint: "h", want: target{"h:443", false}},
		{endpoint: "http://h:4317", want: target{"h:4317", false}},
		{endpoint: "https://h:4317", want: target{"h:4317", true}},
		{endpoint: "HTTPS://h:4317", want: target{"h:4317", true}},
		{endpoint: "Https://h:4317", want: target{"h:4317", true}},
		{endpoint: "HTTP://h:4317", want: target{"h:4317", false}},
		{endpoint: "http://h", want: target{"h:443", false}},
		{endpoint: "https://[::1]", want: target{"[::1]:443", true}},
		{endpoint: "https://h:4317/x", want: target{"h:4317", true}},
		{endpoint: "foo://h:1", wantErr: "want host:port, or an http:// or https:// URL"},
		{endpoint: "http://", wantErr: "no host"},
	}
	for _, tt := range tests {
		t.Run(tt.endpoint, func(t *testing.T) {
			host, secure, err := grpcTarget(tt.endpoint)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("grpcTarget(%q) = %q, %v, %v; want an error containing %q", tt.endpoint, host, secure, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("grpcTarget(%q): %v", tt.endpoint, err)
			}
			if diff := cmp.Diff(tt.want, target{host, secure}); diff != "" {
				t.Errorf("grpcTarget(%q) (-want +got):\n%s", tt.endpoint, diff)
			}
		})
	}
}

type mapEnv map[string]string

func (m mapEnv) get(k string) string { return m[k] }
