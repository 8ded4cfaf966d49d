package front

import (
	"errors"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller holds the parked connections of one Server: plain connections
// waiting for their next request with no goroutine and no buffers. Each
// is registered, one-shot, with an epoll instance that one goroutine
// waits on; a connection the client sends on (or closes) is claimed and
// served again on a new goroutine, one whose idle time runs out is
// claimed and closed by its timer, and Shutdown and Close claim and close
// them all.
//
// A parked connection is known by the id of that parking, which is what
// epoll gives back, never by its descriptor: the descriptor may be closed
// and its number reused by another connection while an event for the old
// one is on its way. Exactly one claim succeeds (taking the connection out
// of the map); whoever makes it owns the connection, removes it from epoll
// before anything else, and either serves or closes it.
type poller struct {
	epfd int
	wake int // eventfd that stop writes to end the wait
	done chan struct{}

	stopOnce sync.Once
	// claimed counts the claims whose unregister has not run yet: stop
	// closes epfd only after them.
	claimed sync.WaitGroup

	mu     sync.Mutex
	parked map[uint64]*conn
	last   uint64 // id of the latest parking; 0 is wake's
	closed bool
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	p := &poller{epfd: epfd, wake: wake, done: make(chan struct{}), parked: map[uint64]*conn{}}
	go p.run()
	return p, nil
}

// run waits for parked connections to become readable until stop.
func (p *poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 128)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// Not expected; the parked connections' timers still
			// close them, and stop or Close the rest.
			return
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == 0 {
				if p.isClosed() {
					return
				}
				continue
			}
			if fc := p.claim(id); fc != nil {
				fc.state.Store(connIdle)
				go p.resume(fc)
			}
		}
	}
}

func (p *poller) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// park registers fc, idle with nothing buffered, until it is readable or
// until its deadline; false when the poller is stopped or the socket
// cannot be registered (the caller then waits for it on its goroutine).
// On true the caller must not touch fc again: another goroutine may
// already serve it.
func (p *poller) park(fc *conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	id := p.last + 1
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	var errno error
	if err := fc.raw.Control(func(fd uintptr) { errno = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) }); err != nil || errno != nil {
		return false
	}
	p.last = id
	p.parked[id] = fc
	fc.parkID = id
	fc.parkTimer = time.AfterFunc(time.Until(fc.deadline), func() { p.expire(id) })
	return true
}

// claim takes the connection parked as id; nil when another claim came
// first (the id is stale).
func (p *poller) claim(id uint64) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	fc := p.parked[id]
	if fc != nil {
		delete(p.parked, id)
		fc.parkTimer.Stop() // (a no-op in the timer's own call)
		fc.parkTimer = nil
		p.claimed.Add(1)
	}
	return fc
}

// resume serves a claimed connection again, on its own goroutine.
func (p *poller) resume(fc *conn) {
	p.unregister(fc)
	fc.woke = true
	fc.run(false)
}

// expire closes a connection whose idle time ran out while parked.
func (p *poller) expire(id uint64) {
	if fc := p.claim(id); fc != nil {
		p.closeParked(fc)
	}
}

// unregister removes fc's socket from epoll; done before the socket is
// closed or read, so that no event of it outlives its ownership. (A
// socket closed meanwhile left epoll by itself.)
func (p *poller) unregister(fc *conn) {
	fc.raw.Control(func(fd uintptr) { unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
	p.claimed.Done()
}

// closeParked closes a claimed connection.
func (p *poller) closeParked(fc *conn) {
	p.unregister(fc)
	fc.state.Store(connClosed)
	fc.end()
}

// closeAll closes every parked connection: they are all idle.
func (p *poller) closeAll() {
	for _, fc := range p.takeAll(false) {
		p.closeParked(fc)
	}
}

// takeAll claims every parked connection; stop: and parks no more.
func (p *poller) takeAll(stop bool) []*conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if stop {
		p.closed = true
	}
	fcs := make([]*conn, 0, len(p.parked))
	for id, fc := range p.parked {
		delete(p.parked, id)
		fc.parkTimer.Stop()
		fc.parkTimer = nil
		p.claimed.Add(1)
		fcs = append(fcs, fc)
	}
	return fcs
}

// stop closes the parked connections, ends the poller's goroutine and
// releases its descriptors. Connections it handed back to their own
// goroutines are the Server's to end.
func (p *poller) stop() {
	p.stopOnce.Do(func() {
		for _, fc := range p.takeAll(true) {
			p.closeParked(fc)
		}
		one := [8]byte{1}
		for {
			if _, err := unix.Write(p.wake, one[:]); err != syscall.EINTR {
				break
			}
		}
		<-p.done
		p.claimed.Wait()
		unix.Close(p.epfd)
		unix.Close(p.wake)
	})
}

// parkedCount is how many connections are parked.
func (p *poller) parkedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.parked)
}
