package supervisor

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// ports hands out free loopback ports and avoids handing the same port to
// two instances while a recently stopped one may still hold it.
type ports struct {
	mu     sync.Mutex
	recent map[int]time.Time
}

const portQuarantine = time.Minute

func newPorts() *ports { return &ports{recent: map[int]time.Time{}} }

func (p *ports) alloc() (int, error) {
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

// reserve marks port as in use by an adopted instance, so that alloc does
// not hand it out while the instance may still hold it.
func (p *ports) reserve(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recent[port] = time.Now()
}
