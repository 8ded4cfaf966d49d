package http1

// GoAway is what a server that does not speak HTTP/2 sends a client that
// opened with the HTTP/2 preface: an empty SETTINGS frame, as the protocol
// requires first, then GOAWAY with HTTP_1_1_REQUIRED (RFC 9113 §6.8, §7)
// and reason as debug data, so that an HTTP/2 client reports why instead
// of a garbled HTTP/1.1 answer.
func GoAway(reason string) []byte {
	if len(reason) > 256 {
		reason = reason[:256]
	}
	b := []byte{0, 0, 0, 0x4, 0, 0, 0, 0, 0} // SETTINGS, no parameters
	n := 8 + len(reason)
	b = append(b, byte(n>>16), byte(n>>8), byte(n), 0x7, 0, 0, 0, 0, 0)
	b = append(b, 0, 0, 0, 0) // last stream id 0: nothing was processed
	b = append(b, 0, 0, 0, 0xd)
	return append(b, reason...)
}
