package telemetry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Event types, as written to events.log and listed in PRODUCT.md.
const (
	EventStart        = "start"
	EventReady        = "ready"
	EventUnhealthy    = "unhealthy"
	EventHealthy      = "healthy"
	EventExit         = "exit"
	EventRestart      = "restart"
	EventStartTimeout = "start_timeout"
	EventDrain        = "drain"
	EventStop         = "stop"
	EventRecycle      = "recycle"
	EventScale        = "scale"
	EventReload       = "reload"
	EventIdleUnload   = "idle_unload"
	EventWake         = "wake"
	EventAutoHeal     = "auto_heal"
	// A starting instance's process listens, and answers, on other ports
	// than the PORT it was given; Detail says where, and the fix. Once
	// per process.
	EventPortMismatch = "port_mismatch"

	// Certificates of the HTTPS listener (package certs). App is empty
	// and Value names the certificate (its first host name).
	EventCertObtained     = "cert_obtained"
	EventCertRenewed      = "cert_renewed"
	EventCertFailed       = "cert_failed" // Detail holds the CA's problem text
	EventCertExpiring     = "cert_expiring"
	EventCertReloaded     = "cert_reloaded"
	EventCertReloadFailed = "cert_reload_failed"
	// A cert_file holds its certificate without the intermediate that
	// issued it: served as it is, it fails verification in clients that
	// do not already have that intermediate. At every load of the files.
	EventCertChainIncomplete = "cert_chain_incomplete"

	// Lookups of an external pool's dns:// and dns+srv:// upstreams. Value
	// is the entry as written; on dns_error, Trigger is the DNS server
	// that failed last, and Detail the error and DNSKept's words.
	EventDNSUpdate    = "dns_update" // Detail: "NAME: +addr -addr", what the answer added and removed
	EventDNSError     = "dns_error"
	EventDNSRecovered = "dns_recovered"

	// An instance whose process a previous gatehouse started, taken over
	// without a restart (an upgrade, or after that gatehouse died).
	EventAdopt = "adopt"

	// Upgrades of gatehouse itself (gatehouse upgrade, SIGUSR2). App is
	// empty; Detail names the old and new gatehouse processes, or why
	// the upgrade was abandoned. upgrade_predecessor_gone is the new
	// process's: the old one died before it heard that the new one was
	// ready, and the new one serves on alone.
	EventUpgradeBegin           = "upgrade_begin"
	EventUpgradeReady           = "upgrade_ready"
	EventUpgradeAbort           = "upgrade_abort"
	EventUpgradePredecessorGone = "upgrade_predecessor_gone"

	// gatehouse leaving a load balancer's rotation: /readyz fails while
	// requests are still served. node_drain and node_undrain are
	// gatehouse drain and undrain; shutdown is SIGTERM (Detail says how
	// long gatehouse serves on: shutdown_delay). App is empty.
	EventNodeDrain   = "node_drain"
	EventNodeUndrain = "node_undrain"
	EventShutdown    = "shutdown"
)

// DNSKept is how a dns_error's Detail ends: the members its entry keeps.
func DNSKept(n int) string { return fmt.Sprintf("keeping the last good set of %d members", n) }

// DNSKeptOf reads DNSKept's count back from a dns_error's Detail.
func DNSKeptOf(detail string) (int, bool) {
	i := strings.LastIndex(detail, "keeping the last good set of ")
	if i < 0 {
		return 0, false
	}
	var n int
	_, err := fmt.Sscanf(detail[i:], "keeping the last good set of %d members", &n)
	return n, err == nil
}

// Event is one lifecycle event of an app or instance.
type Event struct {
	Time     time.Time `json:"time"`
	App      string    `json:"app"`
	Instance string    `json:"instance,omitempty"`
	Type     string    `json:"type"`
	Detail   string    `json:"detail,omitempty"`
	PID      int       `json:"pid,omitempty"`
	// ExitCode is a pointer so that exit code 0 is written and "no exit
	// code" (killed by a signal, or not an exit event) is not.
	ExitCode *int `json:"exit_code,omitempty"`
	// Signal is a name such as "SIGKILL".
	Signal string `json:"signal,omitempty"`
	// Trigger names what caused a recycle or auto-heal action.
	Trigger string `json:"trigger,omitempty"`
	Value   string `json:"value,omitempty"`
	// Cause classifies a failure by the type of its error, for diagnose
	// (cert_failed: "unknown_authority"); empty when nothing more is known
	// than Detail says.
	Cause string `json:"cause,omitempty"`
	// Failed is how many requests failed because of this event.
	Failed int `json:"failed_requests,omitempty"`
	// Output holds the last lines the instance wrote before an exit: the
	// unhandled exception, usually.
	Output []string `json:"output,omitempty"`
}

const (
	defaultRingSize = 10000
	defaultSubBuf   = 64
	// maxEventLine bounds one events.log line ReadEvents will look at; a
	// longer one is garbage, not an event.
	maxEventLine = 1 << 20
)

// Events records lifecycle events: an in-memory ring (for the admin API and
// diagnose), an optional events.log line writer, observers (quick, called
// in Emit) and live subscribers (the log stream). Emit never waits for a
// subscriber: one that does not keep up misses events, and Missed counts
// them.
type Events struct {
	w LineWriter

	// mu serialises Emit so the ring, the file and every subscriber see
	// events in the same order.
	mu sync.Mutex
	// ring grows by append up to size, then wraps: a gateway with few
	// events does not hold room for 10,000 (1.8 MiB) from the start.
	ring []Event
	size int
	next int // ring index the next event goes to
	full bool
	subs map[*subscriber]struct{}
	// observers are called with each event, in Emit (Observe).
	observers []func(Event)
	missed    atomic.Uint64
	// line is reused for encoding under mu; Write does not keep it.
	line bytes.Buffer
}

type subscriber struct {
	ch chan Event
}

// NewEvents returns an Events keeping the last ringSize events (10000 when
// ringSize is 0 or less) and writing each to w, which may be nil to keep
// events in memory only.
func NewEvents(w LineWriter, ringSize int) *Events {
	if ringSize <= 0 {
		ringSize = defaultRingSize
	}
	return &Events{
		w:    w,
		size: ringSize,
		subs: make(map[*subscriber]struct{}),
	}
}

// Emit records ev, setting Time to now when it is zero.
func (e *Events) Emit(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Output = cutOutput(ev.Output)
	if len(e.ring) < e.size {
		e.ring = append(e.ring, ev)
	} else {
		e.ring[e.next] = ev
	}
	e.next++
	if e.next == e.size {
		e.next = 0
		e.full = true
	}
	if e.w != nil {
		e.line.Reset()
		// An Event has only strings, ints and a time: Encode cannot fail,
		// and it appends the newline.
		enc := json.NewEncoder(&e.line)
		enc.SetEscapeHTML(false) // keep "<" readable in details; nobody embeds this in HTML
		if err := enc.Encode(ev); err == nil {
			e.w.Write(e.line.Bytes())
		}
	}
	for _, f := range e.observers {
		f(ev)
	}
	for s := range e.subs {
		select {
		case s.ch <- ev:
		default:
			e.missed.Add(1)
		}
	}
}

// maxOutputLine bounds one of an event's Output lines, in bytes. An
// instance's output line may be ~96 KiB (cut at 64 KiB, plus one read of
// its pipe): twenty of them made an exit's events.log line longer than
// maxEventLine, so ReadEvents (diagnose) skipped the exit. Cut at 4 KiB,
// twenty lines are at most 480 KiB even with every byte escaped as six.
const maxOutputLine = 4 << 10

// outputCut ends an Output line that was cut.
const outputCut = "…"

// cutOutput returns out with its lines longer than maxOutputLine cut, on
// a rune boundary, and marked with outputCut; out itself when none is,
// else a copy, as the caller's slice is not Emit's to change.
func cutOutput(out []string) []string {
	var cut []string
	for i, l := range out {
		if len(l) <= maxOutputLine {
			continue
		}
		if cut == nil {
			cut = slices.Clone(out)
		}
		// Back to the start of the rune at the cut, if it is one: no
		// further, as invalid UTF-8 may have no rune start for long.
		n := maxOutputLine - len(outputCut)
		for k := 1; k < utf8.UTFMax && !utf8.RuneStart(l[n]); k++ {
			n--
		}
		cut[i] = l[:n] + outputCut
	}
	if cut == nil {
		return out
	}
	return cut
}

// Since returns the events in the ring at or after t, oldest first. A zero t
// returns the whole ring.
func (e *Events) Since(t time.Time) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	add := func(evs []Event) {
		for _, ev := range evs {
			if !ev.Time.Before(t) {
				out = append(out, ev)
			}
		}
	}
	if e.full {
		add(e.ring[e.next:])
	}
	add(e.ring[:e.next])
	return out
}

// Last returns the newest n events in the ring, newest first, copying
// only those (the dashboard asks each second).
func (e *Events) Last(n int) []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	size := e.next
	if e.full {
		size = len(e.ring)
	}
	n = min(n, size)
	out := make([]Event, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, e.ring[(e.next-i+len(e.ring))%len(e.ring)])
	}
	return out
}

// Observe has f called with every event emitted from now on, in Emit
// and in order, under the lock that orders events: f must be quick and
// must not emit. For a consumer as quick as a counter it costs neither a
// goroutine nor a subscriber's buffer (200 KiB for 1,024 events), and
// misses nothing.
func (e *Events) Observe(f func(Event)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.observers = append(e.observers, f)
}

// Subscribe returns a channel that receives every event emitted from now on,
// with room for buf of them (64 when buf is 0 or less) before events are
// missed. cancel unsubscribes and closes the channel; it may be called more
// than once.
func (e *Events) Subscribe(buf int) (<-chan Event, func()) {
	if buf <= 0 {
		buf = defaultSubBuf
	}
	s := &subscriber{ch: make(chan Event, buf)}
	e.mu.Lock()
	e.subs[s] = struct{}{}
	e.mu.Unlock()
	var once sync.Once
	cancel := func() {
		once.Do(func() {
			// Under mu, so Emit can never send on the closed channel.
			e.mu.Lock()
			delete(e.subs, s)
			close(s.ch)
			e.mu.Unlock()
		})
	}
	return s.ch, cancel
}

// Missed is how many event deliveries were skipped because a subscriber's
// channel was full.
func (e *Events) Missed() uint64 { return e.missed.Load() }

// ReadEvents parses an events.log file and returns the events at or after
// since (all when since is zero), in file order. Lines that are not events
// (torn writes, garbage) are skipped: an offline tool wants what can be read.
func ReadEvents(path string, since time.Time) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer f.Close()
	var out []Event
	err = ReadLines(f, func(line []byte) {
		if ev, ok := parseEvent(line, since); ok {
			out = append(out, ev)
		}
	})
	if err != nil {
		return out, fmt.Errorf("read events %s: %w", path, err)
	}
	return out, nil
}

// parseEvent parses one line of an events log: ok when it is an event at
// or after since.
func parseEvent(line []byte, since time.Time) (Event, bool) {
	var ev Event
	if json.Unmarshal(line, &ev) != nil || ev.Type == "" || ev.Time.Before(since) {
		return Event{}, false
	}
	return ev, true
}

// MaxLine bounds one line of a log file that ReadLines hands on; a
// longer one is garbage, not an entry.
const MaxLine = maxEventLine

// ReadLines calls fn with each line of r, without its line ending, until
// the end of r. A line longer than MaxLine is consumed and skipped rather
// than buffered, so one long or garbage line neither ends the reading nor
// costs more than MaxLine of memory. fn must not keep line.
func ReadLines(r io.Reader, fn func(line []byte)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, tooLong, err := readLine(br)
		if len(line) > 0 && !tooLong {
			fn(line)
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readLine returns the next line without its newline. A line longer than
// maxEventLine is consumed and reported as tooLong rather than buffered.
func readLine(r *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			line = append(line, chunk...)
			// Its ending (CRLF at most) is not the line's: a line of
			// maxEventLine bytes is whole, whatever ends it.
			if len(line) > maxEventLine+len("\r\n") {
				tooLong, line = true, nil
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) > maxEventLine {
			tooLong, line = true, nil
		}
		return line, tooLong, err
	}
}
