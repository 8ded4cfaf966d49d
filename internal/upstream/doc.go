// Package upstream owns gatehouse's side of the exchange with an app: a
// pool of keep-alive HTTP/1.1 connections per member, writing a request,
// waiting for the answer's first byte, reading the response head within a
// size limit, and deciding whether a connection may carry another request.
//
// The rule for reuse, which keeps one user's answer from reaching another:
// a connection goes back to the pool only when its last exchange ended
// exactly at the response's framing (the body read to its declared end),
// the app did not ask to close, and nothing is buffered past that end; and
// it is reused only when the kernel holds no byte from the app either,
// peeked at every reuse whatever the idle time. A byte the app sent
// unasked (a body longer than its Content-Length, a second response) thus
// closes the connection instead of being read as the next request's
// answer.
//
// A response that may not carry a body (the answer to HEAD, 204, 304)
// ends its connection: the bug such answers invite is a body sent anyway,
// a moment after the head, and no wait before reuse would be long enough
// on a busy machine to be sure it is not coming. (nginx closes every
// upstream connection unless told otherwise; this costs a connect per
// such answer.) What no HTTP/1.1 proxy can tell apart remains: bytes an
// app writes after its response ended and after the connection was reused
// for the next request.
//
// An external pool with upstream_tls: speaks TLS (NewTLSPool). The
// handshake is part of getting a connection, bounded by ConnectTimeout:
// when it fails no request was sent, as when a connect fails. The look
// before reuse is then at the TCP socket under TLS and at what crypto/tls
// has buffered: a record that arrived while the connection idled (a
// close_notify, a stray answer) spends it like a stray byte. Plain
// connections pay nothing for it.
//
// It knows nothing of routing, retries or causes beyond recording how far
// an attempt got (cause.Progress) for the gateway's classifier.
package upstream
