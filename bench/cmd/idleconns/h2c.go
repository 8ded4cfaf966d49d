package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Conn is an HTTP/2 connection with prior knowledge: the HPACK state
// both ways and the next stream, kept between its requests.
type h2Conn struct {
	net.Conn
	started bool
	next    uint32
	enc     *hpack.Encoder
	encBuf  bytes.Buffer
	dec     *hpack.Decoder
}

// pingData marks the PING each request sends after its HEADERS.
var pingData = [8]byte{'i', 'd', 'l', 'e', 'c', 'o', 'n', 'n'}

// roundTrip sends a GET on a new stream, then a PING, and reads until the
// answer has ended with 200 and the PING is acknowledged: what the proxy
// sends before the acknowledgement (its SETTINGS, window updates) is read
// too, so nothing is left on the socket. Frames are read exactly, with no
// read-ahead.
func (c *h2Conn) roundTrip() error {
	var out bytes.Buffer
	fw := http2.NewFramer(&out, nil)
	if !c.started {
		c.started, c.next = true, 1
		c.enc = hpack.NewEncoder(&c.encBuf)
		c.dec = hpack.NewDecoder(4096, nil)
		out.WriteString(http2.ClientPreface)
		fw.WriteSettings()
	}
	id := c.next
	c.next += 2
	c.encBuf.Reset()
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", "x"}, {":path", "/"}} {
		c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.encBuf.Bytes(), EndStream: true, EndHeaders: true})
	fw.WritePing(false, pingData)
	if _, err := c.Conn.Write(out.Bytes()); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	fr := http2.NewFramer(c.Conn, c.Conn)
	fr.ReadMetaHeaders = c.dec
	status := ""
	ended, acked := false, false
	for !ended || !acked {
		f, err := fr.ReadFrame()
		if err != nil {
			return fmt.Errorf("read frame: %w", err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return fmt.Errorf("write settings ack: %w", err)
				}
			}
		case *http2.PingFrame:
			acked = acked || f.IsAck() && f.Data == pingData
		case *http2.GoAwayFrame:
			return fmt.Errorf("GOAWAY %v", f.ErrCode)
		case *http2.RSTStreamFrame:
			if f.StreamID == id {
				return fmt.Errorf("stream reset: %v", f.ErrCode)
			}
		case *http2.MetaHeadersFrame:
			if f.StreamID == id {
				status = f.PseudoValue("status")
				ended = ended || f.StreamEnded()
			}
		case *http2.DataFrame:
			if f.StreamID == id {
				ended = ended || f.StreamEnded()
			}
		}
	}
	if status != "200" {
		return errors.New("status " + status + ", want 200")
	}
	return nil
}
