package testutil

import (
	"net"
	"sync"
)

// HeldConn is a connection whose writes can be held back: a TLS client
// over it makes records that then go out together in one write (Flush),
// or are sent in parts by the test (Take).
type HeldConn struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	held []byte
}

func (h *HeldConn) Write(p []byte) (int, error) {
	h.mu.Lock()
	if h.hold {
		defer h.mu.Unlock()
		h.held = append(h.held, p...)
		return len(p), nil
	}
	h.mu.Unlock()
	return h.Conn.Write(p)
}

// Hold holds back what is written from now on.
func (h *HeldConn) Hold() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold = true
}

// Take stops holding and returns what was held, unsent.
func (h *HeldConn) Take() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold = false
	b := h.held
	h.held = nil
	return b
}

// Flush stops holding and sends what was held in one write.
func (h *HeldConn) Flush() error {
	b := h.Take()
	if len(b) == 0 {
		return nil
	}
	_, err := h.Conn.Write(b)
	return err
}
