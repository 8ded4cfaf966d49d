// Package http1 owns the HTTP/1.1 wire format as gatehouse reads and
// writes it: finding and parsing request and response heads, the framing
// rules of RFC 9112 (Content-Length, Transfer-Encoding, chunked bodies,
// bodies that a status or method forbids), header field syntax, and
// writing heads. It holds no policy (what to route, retry or reject is
// the caller's) and imports nothing of gatehouse, so that it can be fuzzed
// against net/http and reviewed alone.
package http1
