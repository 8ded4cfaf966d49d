package otlp

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"golang.org/x/net/http/httpproxy"
)

// env is what OpenTelemetry's OTLP exporter variables say, for traces:
// each OTEL_EXPORTER_OTLP_TRACES_X over its OTEL_EXPORTER_OTLP_X.
type env struct {
	headers map[string]string
	gzip    bool
	roots   *x509.CertPool
	cert    *tls.Certificate
	// proxy is the proxy of HTTPS_PROXY, HTTP_PROXY and NO_PROXY (or
	// their lowercase forms), as net/http reads them.
	proxy func(*http.Request) (*url.URL, error)
}

func readEnv(getenv func(string) string) (env, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var e env
	get := func(name string) (string, string) {
		if v := getenv("OTEL_EXPORTER_OTLP_TRACES_" + name); v != "" {
			return "OTEL_EXPORTER_OTLP_TRACES_" + name, v
		}
		return "OTEL_EXPORTER_OTLP_" + name, getenv("OTEL_EXPORTER_OTLP_" + name)
	}
	if name, v := get("HEADERS"); v != "" {
		h, err := parseHeaders(v)
		if err != nil {
			return e, fmt.Errorf("otlp: %s: %w", name, err)
		}
		for k := range h {
			if FramingHeader(k) {
				return e, fmt.Errorf("otlp: %s: %q frames the export itself", name, k)
			}
		}
		e.headers = h
	}
	switch name, v := get("COMPRESSION"); strings.TrimSpace(v) {
	case "gzip":
		e.gzip = true
	case "", "none":
	default:
		return e, fmt.Errorf("otlp: %s: %q: want gzip or none", name, v)
	}
	if name, v := get("CERTIFICATE"); v != "" {
		pem, err := os.ReadFile(v)
		if err != nil {
			return e, fmt.Errorf("otlp: %s: %w", name, err)
		}
		e.roots = x509.NewCertPool()
		if !e.roots.AppendCertsFromPEM(pem) {
			return e, fmt.Errorf("otlp: %s: %s holds no PEM certificate", name, v)
		}
	}
	certName, certFile := get("CLIENT_CERTIFICATE")
	keyName, keyFile := get("CLIENT_KEY")
	switch {
	case certFile != "" && keyFile != "":
		c, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return e, fmt.Errorf("otlp: %s and %s: %w", certName, keyName, err)
		}
		e.cert = &c
	case certFile != "":
		return e, fmt.Errorf("otlp: %s is set without %s", certName, keyName)
	case keyFile != "":
		return e, fmt.Errorf("otlp: %s is set without %s", keyName, certName)
	}
	either := func(upper string) string {
		if v := getenv(upper); v != "" {
			return v
		}
		return getenv(strings.ToLower(upper))
	}
	pc := httpproxy.Config{HTTPSProxy: either("HTTPS_PROXY"), HTTPProxy: either("HTTP_PROXY"), NoProxy: either("NO_PROXY")}
	for name, v := range map[string]string{"HTTPS_PROXY": pc.HTTPSProxy, "HTTP_PROXY": pc.HTTPProxy} {
		if err := checkProxy(v); err != nil {
			return e, fmt.Errorf("otlp: %s: %w", name, err)
		}
	}
	pf := pc.ProxyFunc()
	e.proxy = func(r *http.Request) (*url.URL, error) { return pf(r.URL) }
	return e, nil
}

// checkProxy says what is wrong with a proxy variable's value, as
// net/http reads it (a URL, or a host:port taken as http://): else the
// fault would come up at every export instead of at start.
func checkProxy(v string) error {
	if v == "" {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if u2, err2 := url.Parse("http://" + v); err2 == nil && u2.Host != "" {
			u, err = u2, nil
		}
	}
	if err != nil {
		return err
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
		if u.Host != "" {
			return nil
		}
	}
	return fmt.Errorf("%q: want a proxy URL (http://host:port)", v)
}

// parseHeaders reads the W3C Baggage form OTLP's headers variable
// takes: key=value pairs separated by commas, values percent-encoded.
// Keys are lower-cased, as header names are compared: of one header
// named twice, the later value wins, whatever the case of its name.
func parseHeaders(s string) (map[string]string, error) {
	h := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", r) }) {
			return nil, fmt.Errorf("%q: want key=value", strings.TrimSpace(pair))
		}
		v, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", k, err)
		}
		v = strings.TrimSpace(v)
		if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
			return nil, fmt.Errorf("%q: a control character in the value", k)
		}
		h[strings.ToLower(k)] = v
	}
	return h, nil
}

// tls is the TLS configuration of a secure endpoint (nil for a plain
// one): the environment's CA, else the system's, and its client
// certificate.
func (e env) tls(secure bool) *tls.Config {
	if !secure {
		return nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: e.roots}
	if e.cert != nil {
		c.Certificates = []tls.Certificate{*e.cert}
	}
	return c
}
