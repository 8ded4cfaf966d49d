// Package h2 serves HTTP/2 connections (RFC 9113) to an http.Handler:
// the server side only, over a connection someone else accepted (TLS
// with ALPN "h2", or cleartext h2c after its preface was sniffed).
//
// It owns the connection's state: the streams and their states, flow
// control both ways, the HPACK contexts, SETTINGS, GOAWAY and idle
// ends. Frames are read and written with x/net's Framer and hpack; the
// protocol's rules are checked here. A header block (HEADERS and its
// CONTINUATIONs) is decoded by hpack into fields the connection keeps
// from one block to the next (headerblock.go), with the checks x/net's
// MetaHeadersFrame makes, which a fuzz test holds it to.
//
// Its shape is what makes it cheaper than x/net's server, which hands a
// stream's every write to one serve goroutine and back: one goroutine
// per connection reads and acts on frames, one per stream runs the
// handler, and a handler writes its own frames to the connection under
// its write lock. An answer that fits the stream's buffer leaves as
// HEADERS and DATA in one write (one TLS record), and writers queued
// behind one another, or ready together while the connection's other
// handlers run, share a flush.
//
// A connection holds buffers only while it uses them: the write buffer
// from a frame to its flush, the read buffer until the connection has
// been idle a moment; both come from the Server's pools. Idle past that
// moment, a connection served with a Parking (ServeParkable) gives up
// its reader goroutine too, until its client sends again.
//
// It imports nothing of gatehouse.
package h2
