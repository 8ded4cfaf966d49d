package instance

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// Ports hands out free loopback ports and avoids handing the same port to
// two instances while a recently stopped one may still hold it; one is
// shared by every app.
type Ports struct {
	mu     sync.Mutex
	recent map[int]time.Time
}

const portQuarantine = time.Minute

// NewPorts has handed out no port yet.
func NewPorts() *Ports { return &Ports{recent: map[int]time.Time{}} }

// Alloc is a free port, none of those handed out in the last minute.
func (p *Ports) Alloc() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	for port, at := range p.recent {
		if now.Sub(at) > portQuarantine {
			delete(p.recent, port)
		}
	}
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if _, used := p.recent[port]; !used {
			p.recent[port] = now
			return port, nil
		}
	}
	return 0, fmt.Errorf("find a free port: all candidates recently used")
}

// Reserve marks port as in use by an adopted instance, so that Alloc does
// not hand it out while the instance may still hold it.
func (p *Ports) Reserve(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recent[port] = time.Now()
}
