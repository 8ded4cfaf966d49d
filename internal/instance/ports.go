package instance

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Ports hands out free loopback ports and avoids handing the same port to
// two instances while a recently stopped one may still hold it; one is
// shared by every app.
//
// Ports come from below the kernel's ephemeral range (portLow up to
// ip_local_port_range's first port). A port the kernel picks for
// 127.0.0.1:0 lies inside that range, where every outgoing connection on
// the host takes its local port too: between the check and the app's own
// bind, one of them (gatehouse's own to another instance, thousands a
// second under load) may take it, and the app exits with "address
// already in use". Only when the range leaves no room below it is the
// kernel asked.
type Ports struct {
	mu     sync.Mutex
	recent map[int]time.Time
	low    int // first port handed out
	high   int // last; below low when the kernel is asked instead
	intn   func(int) int
}

const (
	portQuarantine = time.Minute
	// portLow is the first port handed out: above the well-known and
	// the usual registered services' ports (databases, caches, 8080s).
	portLow = 20000
	// portTries is how many random ports are checked before the kernel
	// is asked.
	portTries = 64
)

// NewPorts has handed out no port yet.
func NewPorts() *Ports {
	return &Ports{recent: map[int]time.Time{}, low: portLow, high: ephemeralLow() - 1, intn: rand.IntN}
}

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
	if p.high >= p.low {
		for range portTries {
			port := p.low + p.intn(p.high-p.low+1)
			if _, used := p.recent[port]; !used && bindable(port) {
				p.recent[port] = now
				return port, nil
			}
		}
	}
	for range 20 {
		// Every address, as bindable checks.
		l, err := net.Listen("tcp", ":0")
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

// bindable reports whether a listener can take port on every address
// now: the app binds it as it likes (node and Go's ":PORT" take every
// address, IPv6 and IPv4; puma 0.0.0.0), and a port another program
// holds on any of them (::1, 127.0.0.2, a LAN address) is one such an
// app cannot bind, though 127.0.0.1:port is free. "tcp" on no address
// is both families where the host has IPv6, IPv4's 0.0.0.0 otherwise;
// either conflicts with 127.0.0.1:port too.
func bindable(port int) bool {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range, Linux's
// default 32768 when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				return n
			}
		}
	}
	return 32768
}
