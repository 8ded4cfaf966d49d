package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/front"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// DrainedEnv tells the successor of an upgrade that its predecessor was
// drained (gatehouse drain): it starts out of rotation too (see
// Options.Drained).
const DrainedEnv = "GATEHOUSE_DRAINED"

// What /livez and /readyz answer. They reveal nothing (no app names or
// counts), which is why they need no admin token; GET /api/status has
// the details.
const (
	answerOK       = "ok"
	answerDraining = "draining"
	answerStarting = "not ready"
)

// Live reports whether gatehouse itself serves: it answers at all. It
// says nothing of the apps, whose instances gatehouse restarts itself;
// an orchestrator that restarted gatehouse for an app's fault would only
// lose the instances that were fine.
func (s *Server) Live() (bool, string) { return true, answerOK }

// Ready reports whether gatehouse should be sent requests: it is not
// draining (gatehouse drain, or stopping), and every app has its
// min_ready ready instances.
func (s *Server) Ready() (bool, string) {
	if s.draining.Load() {
		return false, answerDraining
	}
	if s.unreadyApp() != "" {
		return false, answerStarting
	}
	return true, answerOK
}

// unreadyApp names an app short of ready instances, "" when none is.
func (s *Server) unreadyApp() string {
	for _, a := range s.sup.Apps() {
		if ready, need := a.Readiness(); ready < need {
			return a.Name()
		}
	}
	return ""
}

// Draining reports whether gatehouse is out of rotation on purpose.
func (s *Server) Draining() bool { return s.draining.Load() }

// Drain takes gatehouse out of rotation, or puts it back (on false):
// /readyz fails, and the public listeners keep serving but close each
// connection after its answer, so that a load balancer that follows
// /readyz moves every client off this node and none keeps a connection
// that would break when it stops. For maintenance: gatehouse drain and
// undrain.
func (s *Server) Drain(_ context.Context, on bool, p supervisor.Progress) error {
	s.rotMu.Lock()
	defer s.rotMu.Unlock()
	if s.stopping.Load() {
		return fmt.Errorf("drain: %w", errStopping)
	}
	if s.upgrade.underWay() {
		// The successor took this node's rotation as the upgrade began
		// (drainedForSuccessor): a change now would be undone when it
		// takes over.
		return errors.New("drain: an upgrade is under way, and the new gatehouse has already taken this node's rotation; try again once it is done")
	}
	if s.upgrade.done.Load() {
		// Handed over, not stopping yet (the upgrade returned, the
		// shutdown has not begun): the admin socket is the successor's
		// too, and a change here would be lost with this process.
		return errors.New("drain: this gatehouse has handed over to a new one, which serves now; run it again")
	}
	if s.draining.Swap(on) == on {
		p("already %s", map[bool]string{true: "draining", false: "in rotation"}[on])
		return nil
	}
	s.setLameDuck(on)
	if on {
		s.events.Emit(telemetry.Event{Type: telemetry.EventNodeDrain, Detail: "/readyz fails; requests are still served, each connection closed after its answer"})
		p("draining: /readyz answers 503 and connections close after each answer; requests are still served (undrain to end it)")
		return nil
	}
	s.events.Emit(telemetry.Event{Type: telemetry.EventNodeUndrain, Detail: "/readyz passes again once the apps are ready"})
	p("back in rotation: /readyz passes once every app has its ready instances")
	return nil
}

// leaveRotation marks the stop begun and takes gatehouse out of
// rotation for good (Drain can no longer undo it), returning whether it
// was draining already; restoreRotation undoes the second half after a
// handover. Both hold rotMu, as Drain does, so that an undrain racing a
// SIGTERM cannot put a stopping node back.
func (s *Server) leaveRotation() (was bool) {
	s.rotMu.Lock()
	defer s.rotMu.Unlock()
	s.stopping.Store(true)
	was = s.draining.Swap(true)
	s.setLameDuck(true)
	return was
}

// drainedForSuccessor reads whether this node is out of rotation for an
// upgrade's successor to start so too, under rotMu, as Drain changes it:
// once the upgrade is under way (begin), a Drain either came before this
// look or is refused.
func (s *Server) drainedForSuccessor() bool {
	s.rotMu.Lock()
	defer s.rotMu.Unlock()
	return s.draining.Load()
}

func (s *Server) restoreRotation(was bool) {
	s.rotMu.Lock()
	defer s.rotMu.Unlock()
	s.draining.Store(was)
	s.setLameDuck(was)
}

// Hurry cuts a shutdown_delay under way short (a second SIGTERM or
// Ctrl-C); the stop goes on to drain at once.
func (s *Server) Hurry() { s.hurryOnce.Do(func() { close(s.hurry) }) }

// beginStop fails readiness for good as the shutdown begins, and serves
// on for shutdown_delay, so that whatever routes to this node (a
// Kubernetes Service, a cloud load balancer, a gatehouse edge) stops
// before the listeners close. It returns early when a component fails
// (returning it) or on Hurry.
func (s *Server) beginStop(exited <-chan *component) *component {
	was := s.leaveRotation()
	s.upgrade.end() // an upgrade under way is called off, later ones refused
	if s.upgrade.done.Load() {
		// Handed over just before: the successor serves, and the node
		// stays in rotation (see shutdown).
		s.restoreRotation(was)
		return nil
	}
	d := s.cfg.ShutdownDelay.D()
	detail := "stopping: /readyz fails, draining at once"
	if d > 0 {
		detail = fmt.Sprintf("stopping: /readyz fails; serving on for shutdown_delay %s, then draining", d)
	}
	s.events.Emit(telemetry.Event{Type: telemetry.EventShutdown, Detail: detail})
	if d <= 0 {
		return nil
	}
	s.log.Info("stopping: serving on while load balancers take this node out", "shutdown_delay", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.hurry:
	case c := <-exited:
		return c
	}
	return nil
}

func (s *Server) setLameDuck(on bool) {
	for _, f := range []*front.Server{s.public, s.secure} {
		if f != nil {
			f.SetLameDuck(on)
		}
	}
}

// withHealth puts /livez and /readyz under health_prefix ahead of h on a
// public listener (ahead of an HTTPS redirect too); h itself when there
// is no health_prefix.
func (s *Server) withHealth(h front.Handler) front.Handler {
	if s.cfg.HealthPrefix == "" {
		return h
	}
	return healthHandler{next: h, prefix: s.cfg.HealthPrefix, s: s}
}

// healthHandler answers /livez and /readyz under prefix on the public
// listeners, ahead of the gateway: probes are neither routed to an app
// nor logged as requests.
type healthHandler struct {
	next   front.Handler
	prefix string
	s      *Server
}

func (h healthHandler) Serve(x *front.Exchange) {
	if x.Reject == nil && h.own(x.W, x.Req) {
		return
	}
	h.next.Serve(x)
}

func (h healthHandler) own(w http.ResponseWriter, r *http.Request) bool {
	rest, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	if !ok || (rest != "/livez" && rest != "/readyz") {
		return false
	}
	check := h.s.Ready
	if rest == "/livez" {
		check = h.s.Live
	}
	admin.WriteHealth(w, r, check)
	return true
}
