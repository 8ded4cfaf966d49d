// Package portcheck owns finding a port mismatch: a starting process
// whose probes are refused because it ignores its PORT and listens, and
// answers, on other ports. Such a process will never be ready, and the
// supervisor says so at once (a port_mismatch event, and the note of
// held requests' 503s) rather than at start_timeout.
package portcheck

import (
	"context"
	"net/netip"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/procstat"
)

// Mismatch is a starting process that ignores its PORT: its probes are
// refused, and its process tree listens, and answers, elsewhere.
type Mismatch struct {
	App, Instance string
	PID, Port     int
	// Listening are the addresses the process tree listens on
	// ("127.0.0.1:8000"), none of them on Port.
	Listening []string
	// Command and Dir are the app's, to tell the runtime whose fix applies.
	Command config.Command
	Dir     string
}

// Explain words a mismatch: what its process does, and the fix.
type Explain func(Mismatch) (what, fix string)

// Prober checks an address once, as a readiness probe does.
type Prober interface {
	Check(ctx context.Context, addr string, spec probe.Spec) probe.Result
}

// A starting process whose probes are refused has its sockets read again
// after first, then at doubling intervals up to most: a read walks /proc
// and the host's socket table, and an app slow to listen at all may take
// all of start_timeout.
const (
	first = time.Second
	most  = 8 * time.Second
)

// maxAnswerChecks bounds how many of the addresses a process listens on
// are probed to see that it serves there.
const maxAnswerChecks = 4

// Check is what one starting process's readiness loop knows of a port
// mismatch.
type Check struct {
	Reader  procstat.Reader
	Prober  Prober
	Explain Explain

	next  time.Time
	every time.Duration
	// found is the mismatch in words, once certain: "listens on …, but
	// was given PORT=… — fix: …".
	found string
}

// Look, after a refused probe and at the intervals above, looks for
// process m.PID listening on other ports than m.Port, and answering
// there with the readiness check's protocol: the app ignores PORT, and
// will not be ready however long it is given. It returns the mismatch in
// words, "" while none is known, for the note of the 503s of held
// requests; isNew is true the first time it is certain (the caller's
// event). Without an Explain it checks nothing.
func (c *Check) Look(ctx context.Context, m Mismatch, spec probe.Spec) (found string, isNew bool) {
	if c.found != "" || c.Explain == nil || time.Now().Before(c.next) {
		return c.found, false
	}
	c.every = min(max(2*c.every, first), most)
	c.next = time.Now().Add(c.every)
	stats, err := c.Reader.Read([]int{m.PID})
	st, ok := stats[m.PID]
	if err != nil || !ok || len(st.Listening) == 0 || st.ListensOn(m.Port) {
		// Not listening yet; or on PORT after all, on an address the
		// probe does not reach (::1): not this mismatch.
		return "", false
	}
	if !c.answersAt(ctx, st.Listening, spec) {
		// A debugger's or an agent's port, opened before the app's own.
		return "", false
	}
	m.Listening = st.Listening
	what, fix := c.Explain(m)
	c.found = what + " — fix: " + fix
	return c.found, true
}

// answersAt reports whether the process answers the readiness check's
// protocol on one of the addresses it listens on: any HTTP answer for an
// HTTP check (its health path may be another), a connection for a TCP
// one.
func (c *Check) answersAt(ctx context.Context, listening []string, spec probe.Spec) bool {
	for i, a := range listening {
		if i == maxAnswerChecks {
			break
		}
		addr, ok := dialable(a)
		if !ok {
			continue
		}
		r := c.Prober.Check(ctx, addr, spec)
		if r.OK || r.Code != 0 {
			return true
		}
	}
	return false
}

// dialable is the address to reach a listener on: its own, or for a
// wildcard one loopback of its family.
func dialable(listening string) (string, bool) {
	ap, err := netip.ParseAddrPort(listening)
	if err != nil {
		return "", false
	}
	ip := ap.Addr()
	switch {
	case ip.IsUnspecified() && ip.Is4():
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	case ip.IsUnspecified():
		ip = netip.IPv6Loopback()
	}
	return netip.AddrPortFrom(ip, ap.Port()).String(), true
}
