// Package upstreamtls owns gatehouse's client side of TLS toward an
// external pool's upstreams (upstream_tls:): the tls.Config an app's block
// makes for one upstream, the handshake that the gateway's connections and
// the probes share, and the one classifier that names a handshake's
// failure for people, the way a load balancer's backend-health page does:
// "certificate expired on 2026-11-30", "unknown authority", "name mismatch
// (certificate is for a.example, not b.example)", "handshake failed:
// certificate required", "not TLS (the upstream answered plain HTTP)".
// Failures are told apart by the error's type, never by its text.
//
// gatehouse speaks HTTP/1.1 to every upstream: the only protocol offered
// in ALPN is http/1.1.
package upstreamtls
