package sdnotify

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notifier sends gatehouse's state to systemd. A nil or zero Notifier is
// valid: without NOTIFY_SOCKET every method does nothing (RunWatchdog
// just waits for its context).
type Notifier struct {
	log *slog.Logger
	// failed makes a failure to send logged once: a notify socket that
	// has gone away would otherwise log on every watchdog tick.
	failed sync.Once
	// main is set once this process has said it is the service's main
	// process (MainPID with its own pid): the watchdog is then its to
	// keep, although WATCHDOG_PID names the process it took over from.
	main atomic.Bool
	// kick wakes the watchdog at once when this process becomes main, so
	// that systemd's timer does not run out in the handover.
	kick chan struct{}
}

// New returns a notifier for the service manager named by NOTIFY_SOCKET,
// or nil when it is unset (not started by systemd, or not Type=notify).
// logger receives the first failure to send; nil discards it.
func New(logger *slog.Logger) *Notifier {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Notifier{log: logger, kick: make(chan struct{}, 1)}
}

// Ready says that gatehouse serves: at start, once its listeners serve,
// and at the end of a reload, whether it succeeded or not.
func (n *Notifier) Ready() {
	n.send("READY=1\nSTATUS=serving\n")
}

// Reloading says that a reload has begun; Ready ends it. MONOTONIC_USEC
// goes in the same datagram: Type=notify-reload matches the two by it.
func (n *Notifier) Reloading() {
	n.send("RELOADING=1\nSTATUS=reloading\n" + daemon.SdNotifyMonotonicUsec())
}

// Stopping says that the shutdown sequence has begun.
func (n *Notifier) Stopping() {
	n.send("STOPPING=1\nSTATUS=stopping: draining requests, then the apps\n")
}

// MainPID says that pid is now the service's main process and that it
// serves, in one datagram so that systemd never sees a new main process
// that is not ready. A self-upgrade's successor calls it with its own pid
// once it serves; the old process then exits without systemd taking its
// exit for the service's. It needs NotifyAccess=all.
func (n *Notifier) MainPID(pid int) {
	if n == nil {
		return
	}
	n.send(fmt.Sprintf("MAINPID=%d\nREADY=1\nSTATUS=serving\n", pid))
	if pid == os.Getpid() && !n.main.Swap(true) {
		select {
		case n.kick <- struct{}{}:
		default:
		}
	}
}

// Status sets the free-form text `systemctl status` shows. A newline
// would start another assignment, so newlines become spaces.
func (n *Notifier) Status(text string) {
	n.send("STATUS=" + strings.ReplaceAll(text, "\n", " ") + "\n")
}

// RunWatchdog sends WATCHDOG=1 every half of WATCHDOG_USEC, while this
// process is the one systemd watches (WATCHDOG_PID, or MainPID since)
// and alive() says gatehouse still works: a hung gatehouse stops
// answering and systemd's WatchdogSec= kills and restarts it. It returns
// when ctx ends, also when there is no watchdog.
func (n *Notifier) RunWatchdog(ctx context.Context, alive func() bool) {
	every := n.watchdogTimeout() / 2
	if every <= 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if n.watched() && alive() {
			n.send("WATCHDOG=1\n")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.kick:
		}
	}
}

// watchdogTimeout is WATCHDOG_USEC, whichever process WATCHDOG_PID names;
// 0 without a notifier or a watchdog.
func (n *Notifier) watchdogTimeout() time.Duration {
	s := os.Getenv("WATCHDOG_USEC")
	if n == nil || s == "" {
		return 0
	}
	usec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || usec <= 0 {
		n.fail(fmt.Errorf("WATCHDOG_USEC=%q is not a positive number of microseconds", s))
		return 0
	}
	return time.Duration(usec) * time.Microsecond
}

// watched reports whether this process is the one whose keep-alives
// systemd waits for: WATCHDOG_PID is unset or names it, or it has taken
// over as main process.
func (n *Notifier) watched() bool {
	if n.main.Load() {
		return true
	}
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.fail(err)
	}
	return d > 0
}

// send writes one datagram to NOTIFY_SOCKET. NOTIFY_SOCKET is left in
// the environment (unsetEnvironment false) for a successor to inherit.
func (n *Notifier) send(state string) {
	if n == nil {
		return
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.fail(fmt.Errorf("notify %s: %w", os.Getenv("NOTIFY_SOCKET"), err))
	}
}

// fail logs the first failure; systemd support is best effort, never a
// reason to stop serving.
func (n *Notifier) fail(err error) {
	n.failed.Do(func() {
		log := n.log
		if log == nil {
			log = slog.New(slog.DiscardHandler)
		}
		log.Warn("systemd notification failed; further failures are not logged", "err", err)
	})
}
