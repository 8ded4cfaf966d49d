package testutil

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// RawH2 is a client connection that speaks HTTP/2 frame by frame, for
// tests that write what a real client would not (malformed frames,
// floods, windows never given back) and read what the server answers.
// Framer writes to Conn and reads from it, with the response fields
// decoded (MetaHeadersFrame); writes and reads may go on in two
// goroutines, each of them one at a time.
type RawH2 struct {
	Conn   net.Conn
	Framer *http2.Framer
	enc    *hpack.Encoder
	block  bytes.Buffer
}

// DialH2 opens a connection to addr for HTTP/2: over TLS with cfg, whose
// handshake must negotiate h2 by ALPN, or, cfg nil, h2c with prior
// knowledge. Nothing is written yet (Preface writes the client's
// preface). The connection closes when the test ends.
func DialH2(t testing.TB, addr string, cfg *tls.Config) (*RawH2, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		cfg = cfg.Clone()
		cfg.NextProtos = []string{"h2"}
		tc := tls.Client(c, cfg)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
			c.Close()
			return nil, fmt.Errorf("ALPN negotiated %q, want h2", p)
		}
		tc.SetDeadline(time.Time{})
		c = tc
	}
	t.Cleanup(func() { c.Close() })
	return NewRawH2(c), nil
}

// NewRawH2 speaks HTTP/2 as a client on c, connected already.
func NewRawH2(c net.Conn) *RawH2 {
	h := &RawH2{Conn: c, Framer: http2.NewFramer(c, c)}
	h.Framer.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	h.enc = hpack.NewEncoder(&h.block)
	return h
}

// Preface writes the client connection preface and a SETTINGS frame with
// settings.
func (h *RawH2) Preface(settings ...http2.Setting) error {
	if _, err := h.Conn.Write([]byte(http2.ClientPreface)); err != nil {
		return err
	}
	return h.Framer.WriteSettings(settings...)
}

// Block hpack-encodes fields, given as name, value pairs, with the
// connection's encoder (its dynamic table is the server decoder's peer,
// so blocks must be sent in the order they are made).
func (h *RawH2) Block(fields ...string) []byte {
	h.block.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		h.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(h.block.Bytes())
}

// Headers writes one HEADERS frame with END_HEADERS carrying fields.
func (h *RawH2) Headers(id uint32, endStream bool, fields ...string) error {
	return h.Framer.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.Block(fields...), EndStream: endStream, EndHeaders: true})
}

// H2Get are the fields of a GET of path on authority with scheme.
func H2Get(scheme, authority, path string) []string {
	return []string{":method", "GET", ":scheme", scheme, ":authority", authority, ":path", path}
}
