package h2_test

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync"

	"golang.org/x/net/http2"
)

// recordingConn is the server's side of a connection, recording every
// Write the server makes to it and every byte it reads from it.
type recordingConn struct {
	net.Conn

	mu     sync.Mutex
	writes [][]byte
	read   []byte
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read = append(c.read, p[:n]...)
	c.mu.Unlock()
	return n, err
}

// recordedFrame is one frame on the wire: its header, its payload, and
// the Writes its first and last bytes went out in.
type recordedFrame struct {
	http2.FrameHeader
	payload     []byte
	first, last int
}

// written are the frames the server wrote, each with the Writes that
// carried it.
func (c *recordingConn) written() []recordedFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	var all []byte
	var writeOf []int // the Write each byte of all went out in
	for i, w := range c.writes {
		all = append(all, w...)
		for range w {
			writeOf = append(writeOf, i)
		}
	}
	frames := parseFrames(all)
	off := 0
	for i := range frames {
		end := off + 9 + len(frames[i].payload)
		frames[i].first, frames[i].last = writeOf[off], writeOf[end-1]
		off = end
	}
	return frames
}

// received are the frames the server read, after the client's preface.
func (c *recordingConn) received() []recordedFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return parseFrames(bytes.TrimPrefix(c.read, []byte(http2.ClientPreface)))
}

// parseFrames splits b into whole frames; a partial one at the end is
// left out.
func parseFrames(b []byte) []recordedFrame {
	var frames []recordedFrame
	for len(b) >= 9 {
		n := int(b[0])<<16 | int(b[1])<<8 | int(b[2])
		if len(b) < 9+n {
			break
		}
		frames = append(frames, recordedFrame{
			FrameHeader: http2.FrameHeader{
				Length:   uint32(n),
				Type:     http2.FrameType(b[3]),
				Flags:    http2.Flags(b[4]),
				StreamID: binary.BigEndian.Uint32(b[5:9]) & (1<<31 - 1),
			},
			payload: b[9 : 9+n],
		})
		b = b[9+n:]
	}
	return frames
}
