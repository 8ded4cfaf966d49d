package front

import (
	"errors"
	"math"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// poller holds the parked connections of one Server: connections on a
// socket of their own (plain, or TLS on it) waiting for their next
// request, or HTTP/2 frame, with no goroutine and no buffers. Each
// is registered, one-shot, with an epoll instance that one goroutine
// waits on; a connection the client sends on (or closes) is claimed and
// served again on a new goroutine. An HTTP/1.1 one whose idle time runs
// out is claimed and closed by that goroutine's scan of the deadlines,
// and Shutdown and Close claim and close them all. An HTTP/2 one has no
// deadline here: its own idle timer, like Shutdown, has it say GOAWAY,
// which wakes it (unparkH2); Shutdown wakes it too, and Close closes its
// socket and wakes it to end.
//
// A parked connection costs the poller one slot (three words): no timer,
// no map entry. Its slot is known by its index and the generation of that
// parking, which is what epoll gives back, never by its descriptor: the
// descriptor may be closed and its number reused by another connection
// while an event for the old one is on its way, and the slot may hold
// another parking by then. Exactly one claim succeeds (emptying the
// slot); whoever makes it owns the connection, removes it from epoll
// before anything else, and either serves or closes it.
//
// Idle deadlines are coarse: the goroutine scans the slots for expired
// ones at the earliest deadline, but never sooner than scanEvery per
// parked connection after its last scan (at most a second), so that the
// scans cost a bounded share of a core however many connections are
// parked. A parked connection is closed at its deadline or up to a
// second after it (about 0.4 s with 8,000 parked; never before it).
type poller struct {
	epfd int
	wake int // eventfd that park and stop write to, to end the wait
	done chan struct{}

	stopOnce sync.Once
	// claimed counts the claims whose unregister has not run yet: stop
	// closes epfd only after them.
	claimed sync.WaitGroup

	mu    sync.Mutex
	slots []parkSlot
	free  []uint32 // indices of the empty slots
	count int      // parked connections
	gen   uint32   // generation of the latest parking
	// minDue is no later than the earliest deadline of a parked
	// connection (it may be earlier: that one was claimed since);
	// lastScan is when the slots were last scanned, wakeAt when the
	// goroutine's wait ends (0: it waits for events only). All are
	// monoNow times.
	minDue, lastScan, wakeAt int64
	closed                   bool
}

// parkSlot holds one parked connection; fc is nil when it is empty.
type parkSlot struct {
	fc  *conn
	due int64 // fc.deadline; never, for HTTP/2
	gen uint32
}

// wakeData is what epoll gives back for the eventfd: no slot's (a slot
// index never reaches 2³²-1).
const wakeData = math.MaxUint64

// Scans of the deadlines are at least scanEvery apart per parked
// connection, and at least a millisecond, at most a second.
const (
	scanEvery   = 50 * time.Microsecond
	scanGapMin  = time.Millisecond
	scanGapMax  = time.Second
	epollEvents = 128
)

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
	ev := epollEvent(unix.EPOLLIN, wakeData)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(wake)
		return nil, err
	}
	p := &poller{epfd: epfd, wake: wake, done: make(chan struct{})}
	go p.run()
	return p, nil
}

// epollEvent is an event of events carrying data (in the union epoll
// gives back, which x/sys splits into Fd and Pad).
func epollEvent(events uint32, data uint64) unix.EpollEvent {
	return unix.EpollEvent{Events: events, Fd: int32(uint32(data)), Pad: int32(uint32(data >> 32))}
}

// run waits for parked connections to become readable, and closes those
// whose deadline passed, until stop.
func (p *poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, epollEvents)
	for {
		n, err := unix.EpollWait(p.epfd, events, p.waitFor())
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// Not expected: the parked connections go back to waiting
			// on their goroutines, and no more park.
			p.abandon()
			return
		}
		for _, ev := range events[:n] {
			data := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if data == wakeData {
				// Reset first, then look: a stop between a look and
				// the reset would have its signal read away, and the
				// poller would wait for ever.
				var buf [8]byte
				unix.Read(p.wake, buf[:])
				if p.isClosed() {
					return
				}
				continue
			}
			if fc := p.claim(uint32(data), uint32(data>>32)); fc != nil {
				p.wakeUp(fc)
			}
		}
		p.expire()
	}
}

func (p *poller) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// waitFor is how long, in milliseconds, the next wait for events may
// last: until the next scan of the deadlines is due, or for ever (-1)
// when nothing is parked.
func (p *poller) waitFor() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count == 0 {
		p.wakeAt = 0
		return -1
	}
	p.wakeAt = p.nextScan(p.minDue)
	ms := (p.wakeAt - monoNow() + int64(time.Millisecond) - 1) / int64(time.Millisecond)
	return int(min(max(ms, 0), math.MaxInt32))
}

// nextScan is when the slots are scanned next, for the earliest
// deadline due.
func (p *poller) nextScan(due int64) int64 {
	gap := min(max(time.Duration(p.count)*scanEvery, scanGapMin), scanGapMax)
	return max(due, p.lastScan+int64(gap))
}

// park registers fc, idle with nothing buffered, until it is readable or
// until its deadline; false when the poller is stopped or the socket
// cannot be registered (the caller then waits for it on its goroutine).
// On true the caller must not touch fc again: another goroutine may
// already serve it.
func (p *poller) park(fc *conn) bool { return p.parkUntil(fc, fc.deadline) }

// parkH2 parks fc's idle HTTP/2 connection until it is readable, or
// until unparkH2: then wake serves it on. Its own idle timer, not the
// poller, bounds its idleness.
func (p *poller) parkH2(fc *conn, wake func() bool) bool {
	fc.h2.wake = wake
	if !p.parkUntil(fc, math.MaxInt64) {
		fc.h2.wake = nil
		return false
	}
	return true
}

// unparkH2 has fc's parked HTTP/2 connection served on at once, when it
// is still parked. Its parking and this are ordered by the HTTP/2
// connection's lock, under which both are called.
func (p *poller) unparkH2(fc *conn) {
	if fc := p.claim(fc.h2.idx, fc.h2.gen); fc != nil {
		p.wakeUp(fc)
	}
}

// wakeUp serves on a connection claimed because its client sent or
// closed, or the poller stopped, on a goroutine of its own.
func (p *poller) wakeUp(fc *conn) {
	if fc.h2 == nil {
		fc.state.Store(connIdle) // an HTTP/2 one stayed active
	}
	go p.resume(fc)
}

// parkUntil is park, with due as the deadline.
func (p *poller) parkUntil(fc *conn, due int64) bool {
	raw := rawSocket(fc.c)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || raw == nil {
		return false
	}
	// Before it can wake: a read on its goroutine makes the Peeker anew.
	parkTLS(fc.c)
	var idx uint32
	if n := len(p.free); n > 0 {
		idx = p.free[n-1]
	} else {
		idx = uint32(len(p.slots))
	}
	gen := p.gen + 1
	ev := epollEvent(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLONESHOT, uint64(idx)|uint64(gen)<<32)
	var errno error
	if err := raw.Control(func(fd uintptr) { errno = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev) }); err != nil || errno != nil {
		return false
	}
	p.gen = gen
	slot := parkSlot{fc: fc, due: due, gen: gen}
	if fc.h2 != nil {
		fc.h2.idx, fc.h2.gen = idx, gen
	}
	if n := len(p.free); n > 0 {
		p.free = p.free[:n-1]
		p.slots[idx] = slot
	} else {
		p.slots = append(p.slots, slot)
	}
	if p.count == 0 || due < p.minDue {
		p.minDue = due
	}
	p.count++
	// The goroutine's wait must end in time for this deadline: it waits
	// for events only, or until a later scan.
	if next := p.nextScan(due); due != math.MaxInt64 && (p.wakeAt == 0 || next < p.wakeAt) {
		p.wakeAt = next
		p.signal()
	}
	return true
}

// signal ends the goroutine's current wait.
func (p *poller) signal() {
	one := [8]byte{1}
	for {
		if _, err := unix.Write(p.wake, one[:]); err != syscall.EINTR {
			return
		}
	}
}

// claim takes the connection parked in slot idx as generation gen; nil
// when another claim came first (the event is stale).
func (p *poller) claim(idx, gen uint32) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if int(idx) >= len(p.slots) || p.slots[idx].gen != gen {
		return nil
	}
	return p.take(idx)
}

// take empties slot idx and returns its connection, now the caller's to
// unregister; nil when it was empty. p.mu is held.
func (p *poller) take(idx uint32) *conn {
	fc := p.slots[idx].fc
	if fc == nil {
		return nil
	}
	p.slots[idx].fc = nil
	p.free = append(p.free, idx)
	p.count--
	p.claimed.Add(1)
	return fc
}

// resume serves a claimed connection again, on its own goroutine.
func (p *poller) resume(fc *conn) {
	p.unregister(fc)
	if fc.h2 != nil {
		wake := fc.h2.wake
		fc.h2.wake = nil
		fc.wakeH2(wake)
		return
	}
	fc.woke = true
	fc.run(false)
}

// expire claims the connections whose deadline passed, when a scan is
// due, and closes them on a goroutine of their own (the poller goes back
// to its events at once).
func (p *poller) expire() {
	now := monoNow()
	p.mu.Lock()
	if p.count == 0 || now < p.nextScan(p.minDue) {
		p.mu.Unlock()
		return
	}
	p.lastScan = now
	var due []*conn
	minDue := int64(math.MaxInt64)
	for i := range p.slots {
		s := &p.slots[i]
		switch {
		case s.fc == nil:
		case s.due <= now:
			due = append(due, p.take(uint32(i)))
		default:
			minDue = min(minDue, s.due)
		}
	}
	p.minDue = minDue
	p.compact()
	p.mu.Unlock()
	if len(due) > 0 {
		go p.closeEach(due)
	}
}

// compact drops the empty slots at the end, and gives back the memory of
// slots that a burst of connections left unused. p.mu is held.
func (p *poller) compact() {
	n := len(p.slots)
	for n > 0 && p.slots[n-1].fc == nil {
		n--
	}
	if n == len(p.slots) {
		return
	}
	p.slots = p.slots[:n]
	free := p.free[:0]
	for _, i := range p.free {
		if int(i) < n {
			free = append(free, i)
		}
	}
	p.free = free
	if cap(p.slots) > 2*n+64 {
		p.slots = append([]parkSlot(nil), p.slots...)
		p.free = append([]uint32(nil), p.free...)
	}
}

// unregister removes fc's socket from epoll; done before the socket is
// closed or read, so that no event of it outlives its ownership. (A
// socket closed meanwhile left epoll by itself.)
func (p *poller) unregister(fc *conn) {
	if raw := rawSocket(fc.c); raw != nil {
		raw.Control(func(fd uintptr) { unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil) })
	}
	p.claimed.Done()
}

// closeParked closes a claimed connection (closeSocketFirst first, which a
// TLS one's closing must not wait for). An HTTP/2 one's socket is
// closed, and it is served on, to end as its reader finds it closed.
func (p *poller) closeParked(fc *conn) {
	if fc.h2 != nil {
		socketOf(fc.c).Close()
		p.wakeUp(fc)
		return
	}
	p.unregister(fc)
	fc.state.Store(connClosed)
	closeSocketFirst(fc.c)
	fc.end()
}

func (p *poller) closeEach(fcs []*conn) {
	for _, fc := range fcs {
		p.closeParked(fc)
	}
}

// closeConn closes fc if it is parked; false when it is not (it woke,
// or was closed, meanwhile), or when its client has sent a request the
// poller has not woken it for yet: that one is not idle, and goes back
// to a goroutine of its own to be served (as closeAll does).
func (p *poller) closeConn(fc *conn) bool {
	p.mu.Lock()
	var claimed *conn
	for i := range p.slots {
		if p.slots[i].fc == fc {
			claimed = p.take(uint32(i))
			break
		}
	}
	p.mu.Unlock()
	if claimed == nil {
		return false
	}
	if pendingRequest(claimed) {
		p.wakeUp(claimed)
		return false
	}
	p.closeParked(claimed)
	return true
}

// closeAll closes every parked connection that is idle. One whose client
// has sent a request the poller has not woken for yet goes back to a
// goroutine of its own, to be served and answered with Connection: close,
// as does an HTTP/2 one, which Shutdown tells GOAWAY.
func (p *poller) closeAll() {
	for _, fc := range p.takeAll(false) {
		if fc.h2 != nil || pendingRequest(fc) {
			p.wakeUp(fc)
			continue
		}
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
	fcs := make([]*conn, 0, p.count)
	for i := range p.slots {
		if fc := p.take(uint32(i)); fc != nil {
			fcs = append(fcs, fc)
		}
	}
	return fcs
}

// abandon hands every parked connection back to a goroutine of its own,
// which waits for its next request there, and parks no more.
func (p *poller) abandon() {
	for _, fc := range p.takeAll(true) {
		p.wakeUp(fc)
	}
}

// stop closes the parked connections, ends the poller's goroutine and
// releases its descriptors. Connections it handed back to their own
// goroutines are the Server's to end.
func (p *poller) stop() {
	p.stopOnce.Do(func() {
		p.closeEach(p.takeAll(true))
		p.signal()
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
	return p.count
}
