package gateway_test

import "testing"

// FuzzPipelinedBodies is the differential test of what the front parses
// itself since it serves every HTTP/1.x request: chunked request bodies
// (http1.ChunkedReader, read by the front's bodyReader), Expect:
// 100-continue, HTTP/1.0, empty lines before a request line, and answers
// of unknown length. A sequence of pipelined (or split, or paused) requests
// on one connection, among them chunked bodies in fuzzed chunks with
// fuzzed size lines (hex case, leading zeros, extensions) and trailers,
// goes through the gateway to a net/http app and, as the same bytes in the
// same writes, straight to net/http's server with the same handler, as in
// FuzzKeepAliveSequence: the answers the client reads (100 Continues
// included, and whether the connection ends) and the requests the
// handler is handed (method, path, body length and checksum) must be the
// same. Where a body ends is decided by the front alone, so a body read
// one byte short or long, or a request taken from inside a body, shows
// here as a different body or an extra request at the app.
//
// Every framing the generator writes is valid, and net/http's server
// reads it: malformed chunked framing is FuzzChunkedBody's (internal/
// http1, against net/http's reader) and TestAttacks's. HTTP/1.0 requests
// never ask for keep-alive (gatehouse answers an HTTP/1.0 client once,
// net/http keeps it alive when asked: both are allowed) and never carry a
// chunked body (net/http's server ignores Transfer-Encoding on HTTP/1.0;
// gatehouse refuses it).
//
// The seeds run in every go test; go test -fuzz=FuzzPipelinedBodies
// explores further.
func FuzzPipelinedBodies(f *testing.F) {
	fuzzSequences(f, pipelinedBodySeeds, pipelinedBodiesForm, nil)
}

// FuzzPipelinedBodiesTLS is FuzzPipelinedBodies over TLS, as
// FuzzKeepAliveSequenceTLS is FuzzKeepAliveSequence.
func FuzzPipelinedBodiesTLS(f *testing.F) {
	fuzzSequences(f, pipelinedBodySeeds, pipelinedBodiesForm, http11TLS())
}

// The flags byte of a request in FuzzPipelinedBodies' input.
const (
	pbClose = 1 << iota
	pbHTTP10
	pbChunked
	pbExpect
	pbTrailer
	pbStream
	pbUpper
	pbCRLF
)

// maxChunks bounds the chunk sizes one body's input names.
const maxChunks = 6

// pipelinedBodiesForm is FuzzPipelinedBodies' input: the flags byte is
// pbClose..., and after the rest come the chunk form (leading zeros and
// extension, a byte each), a count of chunk sizes (0-6) and the sizes (2
// bytes each). The empty line before a request line is dropped but after
// a POST.
var pipelinedBodiesForm = sequenceForm{
	flags: func(q *fuzzReq, flags byte, reqs []fuzzReq, i int) {
		q.Close = flags&pbClose != 0
		q.HTTP10 = flags&pbHTTP10 != 0
		q.Chunked = flags&pbChunked != 0
		q.Expect = flags&pbExpect != 0
		q.Trailer = flags&pbTrailer != 0
		// An answer that runs to the connection's end is the sequence's
		// last: bytes the client sends while it is written (early, or
		// pipelined past the front's read buffer) are left unread when
		// the server closes, and the close then sends a reset in place of
		// the FIN that ends the body; gatehouse and net/http alike (each
		// closes in stages only when a request body was left unread), so
		// which of the two gets them in time is a race, not a difference.
		q.Stream = flags&pbStream != 0 && !(q.HTTP10 && i < len(reqs)-1)
		q.ChunkForm.Upper = flags&pbUpper != 0
		// net/http's server skips empty lines before a request line only
		// after a POST (the clients RFC 9112 §2.2 has in mind send a CRLF
		// after a POST's body); gatehouse skips them anywhere.
		q.CRLF = flags&pbCRLF != 0 && i > 0 && reqs[i-1].Method == "POST"
	},
	flagsOf: func(q fuzzReq) byte {
		flag := func(on bool, bit byte) byte {
			if on {
				return bit
			}
			return 0
		}
		return flag(q.Close, pbClose) | flag(q.HTTP10, pbHTTP10) | flag(q.Chunked, pbChunked) | flag(q.Expect, pbExpect) |
			flag(q.Trailer, pbTrailer) | flag(q.Stream, pbStream) | flag(q.ChunkForm.Upper, pbUpper) | flag(q.CRLF, pbCRLF)
	},
	more: func(s *fuzzBytes, q *fuzzReq) {
		q.ChunkForm.Zeros = s.byte() % 8
		q.ChunkForm.Ext = s.byte() % len(chunkExts)
		for range s.byte() % (maxChunks + 1) {
			q.Chunks = append(q.Chunks, s.u16()%(maxFuzzLen+1))
		}
	},
	appendMore: func(b []byte, q fuzzReq) []byte {
		if len(q.Chunks) > maxChunks || q.ChunkForm.Zeros > 7 || q.ChunkForm.Ext >= len(chunkExts) {
			panic("a seed's chunk form is out of range")
		}
		b = append(b, byte(q.ChunkForm.Zeros), byte(q.ChunkForm.Ext), byte(len(q.Chunks)))
		for _, c := range q.Chunks {
			b = append(b, byte(c>>8), byte(c))
		}
		return b
	},
}

// pipelinedBodySeeds are FuzzPipelinedBodies' seed corpus.
var pipelinedBodySeeds = [][]fuzzReq{
	// Chunked bodies pipelined: one in chunks, with extensions and a
	// trailer, then one of a single chunk, then a GET.
	{
		{Method: "POST", Path: "/c1", BodyLen: 30, Chunked: true, Chunks: []int{10, 5}, ChunkForm: chunkForm{Ext: 3}, Trailer: true, Send: sendAfter},
		{Method: "PUT", Path: "/c2", BodyLen: 7, Chunked: true, Send: sendPipelined, AnswerLen: 20},
		{Method: "GET", Path: "/g", Send: sendPipelined, Close: true},
	},
	// An empty chunked body (the last chunk alone), upper-case sizes with
	// leading zeros, then one larger than the front's read buffer, split
	// inside a chunk.
	{
		{Method: "POST", Path: "/empty", Chunked: true, ChunkForm: chunkForm{Upper: true, Zeros: 3}, Send: sendAfter},
		{Method: "POST", Path: "/big", BodyLen: 9000, Chunked: true, Chunks: []int{4096, 1, 4000}, ChunkForm: chunkForm{Upper: true, Ext: 5},
			Send: sendSplitAfter, Split: 5000, Pause: 5, AnswerLen: 9000},
		{Method: "GET", Path: "/after", Send: sendPipelined},
	},
	// Expect: 100-continue, on a chunked body and on a Content-Length
	// one, pipelined and split; then a GET with Expect and no body.
	{
		{Method: "POST", Path: "/e1", BodyLen: 12, Chunked: true, Chunks: []int{4}, Expect: true, Send: sendAfter},
		{Method: "PUT", Path: "/e2", BodyLen: 300, Expect: true, Send: sendPipelined},
		{Method: "POST", Path: "/e3", BodyLen: 5000, Chunked: true, Chunks: []int{100, 2000}, ChunkForm: chunkForm{Ext: 1}, Expect: true,
			Send: sendSplitEarly, Split: 120, Pause: 3},
		{Method: "GET", Path: "/e4", Expect: true, Send: sendAfter},
	},
	// HTTP/1.0 after HTTP/1.1 requests: its answer ends the connection,
	// and the request pipelined after it is never served.
	{
		{Method: "GET", Path: "/one", Send: sendAfter},
		{Method: "POST", Path: "/ten", BodyLen: 40, HTTP10: true, Send: sendAfter, AnswerLen: 100},
		{Method: "GET", Path: "/never", Send: sendPipelined},
	},
	// HTTP/1.0 with Expect (ignored), an answer of unknown length
	// (running to the connection's end).
	{
		{Method: "PUT", Path: "/ten", BodyLen: 10, HTTP10: true, Expect: true, Stream: true, Send: sendAfter, AnswerLen: 5000},
	},
	// Answers of unknown length (chunked to an HTTP/1.1 client), a HEAD
	// among them, and an empty line after a POST's body.
	{
		{Method: "GET", Path: "/s1", Stream: true, Send: sendAfter, AnswerLen: 6000},
		{Method: "HEAD", Path: "/s2", Stream: true, Send: sendPipelined, AnswerLen: 10},
		{Method: "POST", Path: "/s3", BodyLen: 3, Chunked: true, Stream: true, Send: sendAfter},
		{Method: "GET", Path: "/s4", CRLF: true, Send: sendPipelined, Close: true},
	},
	// Every body form in one sequence of six, sent every way.
	{
		{Method: "POST", Path: "/a", BodyLen: 100, Chunked: true, Chunks: []int{1, 1, 1, 1, 1, 1}, ChunkForm: chunkForm{Zeros: 7, Ext: 4}, Send: sendSplitAfter, Split: 60, Pause: 2},
		{Method: "PUT", Path: "/b", BodyLen: 4500, Chunked: true, Chunks: []int{4500}, Trailer: true, Send: sendEarly, Pause: 1, Delay: 5},
		{Method: "DELETE", Path: "/c", Expect: true, Send: sendPipelined},
		{Method: "POST", Path: "/d", BodyLen: 0, Chunked: true, Expect: true, Send: sendSplitEarly, Split: 7, Pause: 2},
		{Method: "POST", Path: "/e", BodyLen: 64, Send: sendAfter, Stream: true},
		{Method: "GET", Path: "/f", HTTP10: true, CRLF: true, Send: sendPipelined, AnswerLen: 1},
	},
}
