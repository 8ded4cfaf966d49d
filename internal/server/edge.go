package server

import (
	"crypto/tls"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/front"
)

// acmeChallengePrefix is where ACME's HTTP-01 validation asks for its
// token (RFC 8555 §8.3): the one path a redirecting plain listener still
// serves itself.
const acmeChallengePrefix = "/.well-known/acme-challenge/"

// challenger answers ACME HTTP-01 validation requests; certs.Manager is
// one.
type challenger interface {
	HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool
}

// plainHandler is the plain listener's handler when HTTPS is on: ACME's
// HTTP-01 requests are answered by the certificate manager, and every
// other request is redirected to HTTPS (redirect) or served by the
// gateway. Requests the front refuses are the gateway's to answer and
// log either way.
type plainHandler struct {
	gw        front.Handler
	acme      challenger
	redirect  bool
	httpsPort string // "" for 443
}

func newPlainHandler(gw front.Handler, acme challenger, t *config.TLS) plainHandler {
	h := plainHandler{gw: gw, acme: acme, redirect: t.RedirectHTTP}
	if _, port, err := net.SplitHostPort(t.Listen); err == nil && port != "443" {
		h.httpsPort = port
	}
	return h
}

func (h plainHandler) Serve(x *front.Exchange) {
	// (OPTIONS * asks about this server, not a resource to redirect.)
	if x.Reject == nil && x.Req.RequestURI != "*" && h.own(x, x.W, x.Req) {
		return
	}
	h.gw.Serve(x)
}

// own answers r itself when it is an ACME challenge or is to be
// redirected; false leaves it to the gateway.
func (h plainHandler) own(x *front.Exchange, w http.ResponseWriter, r *http.Request) bool {
	if h.acme != nil && strings.HasPrefix(r.URL.Path, acmeChallengePrefix) && h.acme.HandleHTTPChallenge(w, r) {
		return true
	}
	if !h.redirect {
		return false
	}
	w.Header().Set("Location", h.location(r))
	w.Header().Set("Content-Length", "0")
	// The client goes to the HTTPS listener now (an HTTP/2 stream's
	// connection serves on).
	x.CloseAfter()
	w.WriteHeader(http.StatusPermanentRedirect)
	return true
}

// location is r's URL over HTTPS: the request's host (the front checked
// its characters) on the HTTPS listener's port, and its target as sent.
func (h plainHandler) location(r *http.Request) string {
	host := r.Host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	if h.httpsPort != "" {
		host += ":" + h.httpsPort
	}
	target := r.RequestURI
	if target == "" || target[0] != '/' {
		target = r.URL.RequestURI()
	}
	return "https://" + host + target
}

// edgeTLS is the HTTPS listener's config: the certificate manager's (its
// certificates and ACME's TLS-ALPN-01 protocol) with HTTP/2 and HTTP/1.1
// offered in that order, and the minimum version.
func edgeTLS(base *tls.Config, t *config.TLS) *tls.Config {
	c := base.Clone()
	protos := []string{"http/1.1"}
	if t.HTTP2 {
		protos = []string{"h2", "http/1.1"}
	}
	for _, p := range c.NextProtos {
		if p != "h2" && p != "http/1.1" {
			protos = append(protos, p)
		}
	}
	c.NextProtos = protos
	c.MinVersion = tls.VersionTLS12
	if t.MinVersion == "1.3" {
		c.MinVersion = tls.VersionTLS13
	}
	c.CipherSuites = tls12Suites()
	return c
}

// tls12Suites are the TLS 1.2 suites offered: forward-secret AEAD only,
// Mozilla's intermediate profile (Go's default list still has CBC-SHA1
// suites). TLS 1.3's suites are not configurable, and all AEAD.
func tls12Suites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// hstsValue is the Strict-Transport-Security header for t; "" when off.
func hstsValue(t *config.TLS) string {
	if t == nil || t.HSTS <= 0 {
		return ""
	}
	return "max-age=" + strconv.FormatInt(int64(t.HSTS.D().Seconds()), 10)
}
