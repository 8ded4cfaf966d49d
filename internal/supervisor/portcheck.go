package supervisor

import (
	"context"
	"net/netip"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// PortMismatch is a starting process that ignores its PORT: its probes
// are refused, and its process tree listens, and answers, elsewhere.
type PortMismatch struct {
	App, Instance string
	PID, Port     int
	// Listening are the addresses the process tree listens on
	// ("127.0.0.1:8000"), none of them on Port.
	Listening []string
	// Command and Dir are the app's, to tell the runtime whose fix applies.
	Command config.Command
	Dir     string
}

// A starting process whose probes are refused has its sockets read again
// after portCheckFirst, then at doubling intervals up to portCheckMax: a
// read walks /proc and the host's socket table, and an app slow to
// listen at all may take all of start_timeout.
const (
	portCheckFirst = time.Second
	portCheckMax   = 8 * time.Second
)

// maxAnswerChecks bounds how many of the addresses a process listens on
// are probed to see that it serves there.
const maxAnswerChecks = 4

// portCheck is what one starting process's readiness loop knows of a
// port mismatch.
type portCheck struct {
	next  time.Time
	every time.Duration
	// found is the mismatch in words, once certain: "listens on …, but
	// was given PORT=… — fix: …".
	found string
}

// check looks, after a refused probe and at the intervals above, for
// the process listening on other ports than PORT, and answering
// there: the app ignores PORT, and will not be ready however long it is
// given. The first time it is certain, the mismatch is an event (the run
// terminal's line); it returns the mismatch in words, "" while none is
// known, for the note of the 503s of held requests. Without an
// Options.ExplainPortMismatch it checks nothing.
func (pc *portCheck) check(ctx context.Context, in *Instance, proc *process, cfg *config.App, spec probe.Spec) string {
	explain := in.app.sup.opts.ExplainPortMismatch
	if pc.found != "" || explain == nil || time.Now().Before(pc.next) {
		return pc.found
	}
	pc.every = min(max(2*pc.every, portCheckFirst), portCheckMax)
	pc.next = time.Now().Add(pc.every)
	in.mu.Lock()
	port := in.port
	in.mu.Unlock()
	stats, err := in.app.sup.reader.Read([]int{proc.pid})
	st, ok := stats[proc.pid]
	if err != nil || !ok || len(st.Listening) == 0 || st.ListensOn(port) {
		// Not listening yet; or on PORT after all, on an address the
		// probe does not reach (::1): not this mismatch.
		return ""
	}
	if !answersAt(ctx, in, st.Listening, spec) {
		// A debugger's or an agent's port, opened before the app's own.
		return ""
	}
	what, fix := explain(PortMismatch{App: in.app.name, Instance: in.ID, PID: proc.pid, Port: port,
		Listening: st.Listening, Command: cfg.Command, Dir: cfg.Dir})
	pc.found = what + " — fix: " + fix
	in.emit(telemetry.Event{Type: telemetry.EventPortMismatch, PID: proc.pid, Detail: pc.found})
	return pc.found
}

// answersAt reports whether the process answers the readiness check's
// protocol on one of the addresses it listens on: any HTTP answer for an
// HTTP check (its health path may be another), a connection for a TCP
// one.
func answersAt(ctx context.Context, in *Instance, listening []string, spec probe.Spec) bool {
	for i, a := range listening {
		if i == maxAnswerChecks {
			break
		}
		addr, ok := dialable(a)
		if !ok {
			continue
		}
		// The prober itself, not in.probe: these are not the instance's
		// probes, for its metrics.
		r := in.app.sup.prober.Check(ctx, addr, spec)
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
