package gateway

import (
	"net/http"

	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/trust"
)

// X-Forwarded-* and the client's address.
//
// The peer is who gatehouse got the connection from: the socket's peer,
// or the client a PROXY protocol header named. A peer that is not in
// trusted_proxies (every peer, by default) is the client: what it sent in
// X-Forwarded-* is replaced with what gatehouse sees. A trusted peer is a proxy in front: its X-Forwarded-For
// is kept and the peer appended, its X-Forwarded-Proto and -Host are kept
// when they are plain (see trust.ValidProto, trust.ValidHost), and the
// client (in the access log) is the one its chain names, read strictly
// from right to left (trust.Proxies.Client).

// peer notes whether the request's peer at ip is a trusted proxy and, if
// so, the client its X-Forwarded-For names. With no trusted_proxies it
// does nothing: the access log's client is the peer.
func (g *Gateway) peer(st *reqState, ip string, h http.Header) {
	if g.trust == nil || !g.trust.Peer(ip) {
		return
	}
	st.trusted = true
	st.client = g.trust.Client(h["X-Forwarded-For"], ip)
}

// forwarded sets the X-Forwarded-* fields of the request to the app, in
// the exchange's header map. The scheme is the connection's.
func forwarded(x *front.Exchange, st *reqState) {
	h := x.Req.Header
	proto := "http"
	if secureRequest(x.Req) {
		proto = "https"
	}
	if !st.trusted {
		h["X-Forwarded-For"] = x.One(x.IP)
		h["X-Forwarded-Host"] = x.One(x.Req.Host)
		h["X-Forwarded-Proto"] = x.One(proto)
		return
	}
	h["X-Forwarded-For"] = x.One(trust.AppendFor(h["X-Forwarded-For"], x.IP))
	if !trust.ValidHost(h["X-Forwarded-Host"]) {
		h["X-Forwarded-Host"] = x.One(x.Req.Host)
	}
	if !trust.ValidProto(h["X-Forwarded-Proto"]) {
		h["X-Forwarded-Proto"] = x.One(proto)
	}
}
