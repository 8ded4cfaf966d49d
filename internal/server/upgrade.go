package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/handover"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// An upgrade replaces this gatehouse process with a new one, started from
// the executable at the same path, without refusing a connection and
// without stopping an app:
//
//  1. The supervisor leaves every instance: its process runs on, its
//     member stays in the pool, and this process keeps serving with it.
//  2. The successor starts with the listening sockets (package handover),
//     adopts the instances from data_dir/processes.json (their parent is
//     a shim, not this process: see package shim), probes each once, and
//     says it is ready; only then does it accept.
//  3. This process stops accepting, ends its event streams cleanly, serves
//     the requests it has and those that come on its keep-alive
//     connections for a moment (answering Connection: close), and exits
//     without stopping any instance.
//
// If the successor says it cannot, exits, or is not ready within
// UpgradeTimeout, it is killed (SIGKILL: its own shutdown would stop the
// apps), this process takes the instances back and serves on.
//
// If this process dies before it hears that the successor is ready
// (killed in the middle of step 2), the successor, which holds the
// sockets and the instances, finds nobody to tell and serves on alone
// (upgrade_predecessor_gone).

// UpgradeTimeoutEnv tells the successor of an upgrade how long its
// predecessor waits for it to be ready, a Go duration ("5m0s"): the
// successor's Options.AdoptTimeout.
const UpgradeTimeoutEnv = "GATEHOUSE_UPGRADE_TIMEOUT"

// UpgradeTimeoutFromEnv is the bound a successor was given by its
// predecessor in env (os.Getenv's form); 0 (the default) when it was
// given none it can read.
func UpgradeTimeoutFromEnv(getenv func(string) string) time.Duration {
	d, err := time.ParseDuration(getenv(UpgradeTimeoutEnv))
	if err != nil || d <= 0 {
		return 0
	}
	return d
}

// upgradeState is a server's part in upgrades, as the old process and as
// the new one.
type upgradeState struct {
	exe     string
	args    []string
	timeout time.Duration
	// adopt bounds this successor's adoption of the instances.
	adopt time.Duration
	// inherit is what this process got from its predecessor; nil if none.
	inherit *handover.Inherited

	// running is closed when the upgrade under way returns; nil when
	// none is (one at a time). mu guards it and is held only to look.
	mu      sync.Mutex
	running chan struct{}
	// stopping ends when this gatehouse begins to stop (see end): an
	// upgrade under way is called off, and later ones are refused.
	stopping context.Context
	stop     context.CancelCauseFunc
	// handedOver is closed once a successor took over: Run then shuts
	// down, leaving the instances.
	handedOver chan struct{}
	done       atomic.Bool
	// ready: this successor told its predecessor it serves (or it is no
	// successor). Until then its shutdown leaves the instances it adopted.
	ready atomic.Bool
}

// idleGrace is how long the old process of an upgrade keeps its idle
// keep-alive connections open to answer their next request with
// Connection: close (see front.Server.ShutdownIdleGrace).
const idleGrace = 2 * time.Second

func newUpgradeState(opts Options) *upgradeState {
	u := &upgradeState{exe: opts.Executable, args: opts.Args, timeout: opts.UpgradeTimeout, inherit: opts.Handover,
		handedOver: make(chan struct{})}
	u.stopping, u.stop = context.WithCancelCause(context.Background())
	u.ready.Store(opts.Handover == nil)
	if u.timeout <= 0 {
		u.timeout = time.Minute
	}
	u.adopt = opts.AdoptTimeout
	if u.adopt <= 0 {
		u.adopt = u.timeout
	}
	return u
}

// inherited is the predecessor's socket for the listener what (listen, tls
// listen, admin listen) if it was bound for addr.
func (u *upgradeState) inherited(what, addr string) (net.Listener, bool, error) {
	if u.inherit == nil {
		return nil, false, nil
	}
	return u.inherit.Listener(what, addr)
}

// closeInherited closes the inherited sockets the config no longer uses
// (a listen address that changed).
func (u *upgradeState) closeInherited() {
	if u.inherit != nil {
		u.inherit.Close()
	}
}

// Upgrade replaces this gatehouse with a new process (see above) and
// returns the new process's pid once it serves; this process then shuts
// down, leaving the instances to it. On failure this process carries on,
// and the error says why.
func (s *Server) Upgrade(ctx context.Context, timeout time.Duration, p supervisor.Progress) (int, error) {
	u := s.upgrade
	if timeout <= 0 {
		timeout = u.timeout
	}
	finish, err := u.begin()
	if err != nil {
		return 0, err
	}
	defer finish()
	if u.done.Load() {
		return 0, errors.New("upgrade: this gatehouse has already handed over to a new process")
	}
	if !u.ready.Load() {
		return 0, errors.New("upgrade: this gatehouse is itself taking over from another; try again when it serves")
	}
	if !u.possible() {
		return 0, errors.New("upgrade: this gatehouse runs inside another program, not as the gatehouse command; it cannot start a successor")
	}
	if os.Getpid() == 1 {
		// When the first process of a PID namespace exits, the kernel
		// kills every other one in it: the successor and every app.
		return 0, errors.New("upgrade: this gatehouse is PID 1 (a container's first process): its exit would end every process in the container, the new gatehouse and the apps included; restart the container instead")
	}
	if _, err := os.Stat(u.exe); err != nil {
		return 0, fmt.Errorf("upgrade: the gatehouse executable: %w", err)
	}
	// The new process reads the config file: in another data_dir it would
	// find no instance to adopt and start a second set, the first left
	// running with no gatehouse. (A config that fails to load is the new
	// process's to report.)
	if next, err := s.reread(); err == nil && next.DataDir != s.cfg.DataDir {
		return 0, fmt.Errorf("upgrade: data_dir changed in the config (%s → %s): a new process would not find the running instances; stop and start gatehouse to move it",
			s.cfg.DataDir, next.DataDir)
	}
	if err := s.sup.CanLeave(); err != nil {
		return 0, fmt.Errorf("upgrade: %w", err)
	}
	s.emitUpgrade(telemetry.EventUpgradeBegin, fmt.Sprintf("gatehouse pid %d starts %s to take over", os.Getpid(), u.exe))
	s.notify.Reloading()
	p("leaving the instances to the new process (they run on; this process serves until it is ready)")
	s.sup.Leave()
	env := os.Environ()
	if s.drainedForSuccessor() {
		// A node drained for maintenance stays out of rotation through
		// the upgrade: drain, upgrade, undrain.
		env = append(env, DrainedEnv+"=1")
	}
	// The successor's own bound on adopting the instances is the one
	// this process waits for it within (upgrade --timeout), not its
	// default: it would give up first.
	env = append(env, UpgradeTimeoutEnv+"="+timeout.String())
	succ, err := handover.Start(u.exe, u.args, env, s.handedSockets(), os.Stdout, os.Stderr)
	if err == nil {
		p("started %s as pid %d; waiting up to %s for it to adopt the instances and serve", u.exe, succ.PID(), timeout)
		err = succ.AwaitReady(u.stopping, timeout)
	}
	if err != nil {
		s.sup.TakeBack()
		s.dataLock.claim()
		s.emitUpgrade(telemetry.EventUpgradeAbort, err.Error()+"; this gatehouse (pid "+strconv.Itoa(os.Getpid())+") took its instances back and serves on")
		s.notify.Ready()
		return 0, fmt.Errorf("upgrade: %w", err)
	}
	// The old process tells systemd too, before it can exit: the new
	// one's own MAINPID= may come after this process's exit, which
	// systemd would take for the service's end.
	s.notify.MainPID(succ.PID())
	s.emitUpgrade(telemetry.EventUpgradeReady, fmt.Sprintf("gatehouse pid %d serves; pid %d stops accepting, finishes its requests and exits, leaving the apps running",
		succ.PID(), os.Getpid()))
	p("pid %d serves; this process (pid %d) drains and exits", succ.PID(), os.Getpid())
	u.done.Store(true)
	close(u.handedOver)
	return succ.PID(), nil
}

// HandedOver reports whether this gatehouse handed over to a successor
// (Run then returns nil with the instances left running).
func (s *Server) HandedOver() bool { return s.upgrade.done.Load() }

func (s *Server) emitUpgrade(typ, detail string) {
	s.events.Emit(telemetry.Event{Type: typ, Detail: detail, PID: os.Getpid()})
	s.log.Info(typ, "detail", detail)
}

// handedSockets are the listening sockets a successor gets, and the
// data_dir lock (see lockDataDir).
func (s *Server) handedSockets() []handover.Listener {
	var out []handover.Listener
	add := func(key, addr string, ln net.Listener) {
		if sc, ok := ln.(syscall.Conn); ok {
			out = append(out, handover.Listener{Key: key, Addr: addr, Ln: sc})
		}
	}
	add("listen", s.cfg.Listen, s.rawPublic)
	if s.cfg.TLS != nil {
		add("tls listen", s.cfg.TLS.Listen, s.rawTLS)
	}
	add("admin listen", s.cfg.Admin, s.rawAdmin)
	if l, ok := s.dataLock.handover(filepath.Join(s.cfg.DataDir, LockFile)); ok {
		out = append(out, l)
	}
	return out
}

// takeOver is a successor's step between starting its supervisor and
// accepting: it waits until every adopted instance has been checked, then
// tells its predecessor (and systemd) that it serves. Nothing to do for a
// gatehouse started on its own.
func (s *Server) takeOver(ctx context.Context) error {
	u := s.upgrade
	if u.inherit == nil {
		return nil
	}
	s.log.Info("adopting the previous gatehouse's instances", "pid", u.inherit.Parent(), "within", u.adopt.String())
	c, cancel := context.WithTimeout(ctx, u.adopt)
	defer cancel()
	if err := s.sup.AwaitAdopted(c); err != nil {
		err = fmt.Errorf("adopting the instances: %w", err)
		u.inherit.Fail(err)
		return err
	}
	// Named in the data_dir lock before the predecessor hears of it and
	// exits (it names itself again if it takes the instances back).
	s.dataLock.claim()
	if err := u.inherit.Ready(); err != nil {
		if !errors.Is(err, handover.ErrOldProcessGone) {
			// The predecessor gave up on this process (and kills it).
			return fmt.Errorf("tell the previous gatehouse (pid %d) this one is ready: %w", u.inherit.Parent(), err)
		}
		// Nobody is left to take the instances back: this process, which
		// has them and the sockets, is the gatehouse now.
		s.emitUpgrade(telemetry.EventUpgradePredecessorGone, fmt.Sprintf(
			"the previous gatehouse (pid %d) went away during the handover; gatehouse pid %d has the listening sockets and the instances, and serves on",
			u.inherit.Parent(), os.Getpid()))
	}
	u.ready.Store(true)
	s.notify.MainPID(os.Getpid())
	s.log.Info("took over from the previous gatehouse", "previous_pid", u.inherit.Parent())
	return nil
}

// end is the first step of a shutdown: it calls off an upgrade under way
// (its successor is killed and the instances taken back, to be stopped
// with the rest: a stop leaves nothing running), waits until that upgrade
// has returned, and refuses any later one. An upgrade that had already
// handed over is done, and the shutdown leaves the instances to the
// successor.
func (u *upgradeState) end() {
	u.stop(errors.New("this gatehouse is stopping"))
	u.mu.Lock()
	running := u.running
	u.mu.Unlock()
	if running != nil {
		<-running // the upgrade under way, called off, returns
	}
}

// begin marks an upgrade under way, for end to wait for, unless one
// already is or this gatehouse is stopping; finish marks its return.
// stopping is looked at under mu: end, having stopped, either sees the
// upgrade that began before or none begins after.
func (u *upgradeState) begin() (finish func(), err error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	switch {
	case u.running != nil:
		return nil, errors.New("upgrade: another upgrade is under way")
	case u.stopping.Err() != nil:
		return nil, errors.New("upgrade: this gatehouse is stopping")
	}
	running := make(chan struct{})
	u.running = running
	return func() {
		u.mu.Lock()
		u.running = nil
		u.mu.Unlock()
		close(running)
	}, nil
}

// underWay reports whether an upgrade is under way (between begin and
// its finish).
func (u *upgradeState) underWay() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.running != nil
}

// possible reports whether this server can start a successor: it knows
// the gatehouse executable (the gatehouse command says it; a server
// embedded in another program, as in tests, does not).
func (u *upgradeState) possible() bool { return u.exe != "" }

// leaving reports whether the shutdown must leave the instances running:
// they were handed over, or this successor never became ready (its
// predecessor takes them back).
func (u *upgradeState) leaving() bool { return u.done.Load() || !u.ready.Load() }
