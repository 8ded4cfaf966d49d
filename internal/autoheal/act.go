package autoheal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/reaper"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// customTimeout bounds an action: custom command.
const customTimeout = 30 * time.Second

// act carries out the app's action for a fired trigger, unless the
// instance is too young or the app has recycled too often.
func (h *Healer) act(ctx context.Context, f *firing) {
	a := h.sup.app(f.app)
	c := h.counters(f.app, f.instance)
	if a == nil || c == nil {
		return
	}
	in := findInstance(a, f.instance)
	if in == nil || in.Stopping() {
		// Gone, or already on its way out (a recycle, reload or scale
		// got there first): acting again would only count against
		// max_recycles and report a failed recycle.
		c.clear()
		return
	}
	ah := a.Config().AutoHeal
	if ah == nil {
		ah = config.NewAutoHeal()
	}
	st := in.Process()
	action, ok := h.actionFor(f, in, ah, st)
	if !ok || !h.allow(a.Name(), ah, action) {
		c.done()
		return
	}
	h.emit(f, st.PID, fmt.Sprintf("%s: %s; action %s", f.instance, f.value, action))
	switch action {
	case config.ActionLogEvent:
		c.clear()
	case config.ActionCustom:
		h.record(a.Name())
		h.async(func() {
			out, err := runCustom(ctx, ah.Custom, f, st)
			h.emit(f, st.PID, customResult(ah.Custom, out, err))
			c.clear()
		})
	default:
		undo := h.record(a.Name())
		h.async(func() {
			if action == config.ActionDump {
				h.dump(ctx, f, st.PID, ah.DumpOf())
			}
			err := a.Recycle(ctx, f.instance, func() error { return stillDue(a, f, st) }, "auto-heal "+f.trigger+": "+f.value)
			var preempted *supervisor.PreemptedError
			var notDue *notDueError
			switch {
			case errors.As(err, &preempted):
				// The operator's fix (a deploy, a restart) comes first;
				// nothing was replaced, so nothing counts against
				// max_recycles.
				undo()
				h.emit(f, st.PID, "not recycled: "+preempted.Error())
			case errors.Is(err, supervisor.ErrNoInstance):
				// Replaced or stopped while the recycle waited for the app
				// (a reload rolling its instances holds it): nothing failed,
				// and no recycle happened to count against max_recycles.
				undo()
				h.emit(f, st.PID, "not recycled: "+f.instance+" was replaced or stopped meanwhile (a reload, scale or recycle got there first)")
			case errors.As(err, &notDue):
				// What fired no longer holds after what the recycle
				// waited out (the operator's restart, the fix of an
				// outage): none happened, and none counts.
				undo()
				h.emit(f, st.PID, "not recycled: "+notDue.Error())
			case err != nil:
				h.emit(f, st.PID, "recycle failed: "+err.Error())
			}
			c.clear()
		})
	}
}

// notDueError is why an instance whose trigger fired is no longer to be
// recycled once the recycle has the app.
type notDueError struct{ why string }

func (e *notDueError) Error() string { return e.why }

// stillDue reports whether the recycle f asked for is still due, asked
// once it has the app (it may have waited out an operator's operation):
// the instance must run the process st the trigger fired on (a restart
// gives it a new one, judged afresh), and, for health.recycle_after, be
// unhealthy still (a passed probe starts its time over).
func stillDue(a app, f *firing, st process) error {
	in := findInstance(a, f.instance)
	if in == nil {
		return nil // the recycle finds it gone (supervisor.ErrNoInstance)
	}
	if pid := in.Process().PID; st.PID > 0 && pid != st.PID {
		return &notDueError{fmt.Sprintf("%s was restarted meanwhile (pid %d is gone); its new process is judged afresh", f.instance, st.PID)}
	}
	if f.trigger == triggerUnhealthy {
		if _, _, still := in.Unhealthy(); !still {
			return &notDueError{f.instance + " is no longer unhealthy (a probe passed meanwhile)"}
		}
	}
	return nil
}

// actionFor is what is done for f: auto_heal's action, on an instance at
// least min_process_execution_time old. health.recycle_after's firing is
// a recycle whatever auto_heal's action (the instance serves nobody, and
// logging it would not bring it back), timed by how long the instance has
// been unhealthy rather than its age, and dropped if a probe passed since
// it fired; ok is false when nothing is to be done now.
func (h *Healer) actionFor(f *firing, in instance, ah *config.AutoHeal, st process) (action string, ok bool) {
	if f.trigger == triggerUnhealthy {
		_, _, still := in.Unhealthy()
		return config.ActionRecycle, still
	}
	return ah.Action, time.Since(st.StartedAt) >= ah.MinProcessExecutionTime.D()
}

// dump takes the action's dump before the recycle; a dump that fails
// (its dump_failed event says why) does not hold the recycle back.
func (h *Healer) dump(ctx context.Context, f *firing, pid int, kind string) {
	if h.dumper == nil {
		h.emit(f, pid, "no dump taken: this gatehouse keeps no dumps")
		return
	}
	if err := h.dumper.Dump(ctx, f.app, f.instance, kind, "auto-heal "+f.trigger+": "+f.value); err != nil {
		h.emit(f, pid, "dump failed, recycling anyway: "+err.Error())
	}
}

func (h *Healer) async(f func()) {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		f()
	}()
}

func findInstance(a app, id string) instance {
	for _, in := range a.Instances() {
		if in.ID() == id {
			return in
		}
	}
	return nil
}

// allow applies max_recycles to action: past it, auto-heal pauses for
// the app with one event, and resumes by itself when the period has room
// again.
func (h *Healer) allow(app string, ah *config.AutoHeal, action string) bool {
	if action == config.ActionLogEvent || ah.MaxRecycles == nil {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.appState(app)
	cutoff := time.Now().Add(-ah.MaxRecycles.Per.D())
	kept := s.recycles[:0]
	for _, t := range s.recycles {
		if t.After(cutoff) {
			kept = append(kept, t)
		}
	}
	s.recycles = kept
	if len(kept) < ah.MaxRecycles.Count {
		s.paused = false
		return true
	}
	if !s.paused {
		s.paused = true
		h.events.Emit(telemetry.Event{App: app, Type: telemetry.EventAutoHeal, Trigger: "max_recycles",
			Detail: fmt.Sprintf("auto-heal paused: %d recycles within %s (max_recycles); it resumes when the oldest is %s old",
				len(kept), ah.MaxRecycles.Per.D(), ah.MaxRecycles.Per.D())})
	}
	return false
}

// record counts a recycle against max_recycles; undo takes it back, for
// a recycle that did not happen.
func (h *Healer) record(app string) (undo func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.appState(app)
	at := time.Now()
	s.recycles = append(s.recycles, at)
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if i := slices.Index(s.recycles, at); i >= 0 {
			s.recycles = slices.Delete(s.recycles, i, i+1)
		}
	}
}

func (h *Healer) appState(app string) *appState {
	s := h.apps[app]
	if s == nil {
		s = &appState{}
		h.apps[app] = s
	}
	return s
}

func (h *Healer) emit(f *firing, pid int, detail string) {
	h.events.Emit(telemetry.Event{App: f.app, Instance: f.instance, PID: pid, Type: telemetry.EventAutoHeal,
		Trigger: f.trigger, Value: f.value, Detail: detail})
}

// runCustom runs the custom command with its placeholders filled.
func runCustom(ctx context.Context, argv config.Command, f *firing, st process) (string, error) {
	if len(argv) == 0 {
		return "", fmt.Errorf("no custom command configured")
	}
	r := strings.NewReplacer("{app}", f.app, "{instance}", f.instance, "{pid}", strconv.Itoa(st.PID), "{port}", strconv.Itoa(st.Port))
	args := make([]string, len(argv))
	for i, a := range argv {
		args[i] = r.Replace(a)
	}
	ctx, cancel := context.WithTimeout(ctx, customTimeout)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := reaper.Start(cmd); err != nil {
		return "", err
	}
	err := reaper.Wait(cmd)
	return out.String(), err
}

func customResult(argv config.Command, out string, err error) string {
	const max = 2000
	if len(out) > max {
		out = out[:max] + "…"
	}
	status := "ok"
	if err != nil {
		status = err.Error()
	}
	return fmt.Sprintf("custom action %q: %s; output: %s", strings.Join(argv, " "), status, strings.TrimSpace(out))
}
