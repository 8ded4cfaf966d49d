package autoheal

import (
	"context"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// Apps is the supervisor as New takes it; supervised narrows it to the
// fleet the healer works on.
type Apps interface {
	Apps() []*supervisor.App
	App(name string) *supervisor.App
}

// fleet is everything the healer reads of the supervisor and does
// through it. The trigger and action logic sees only this, so that it
// can be driven with small fakes on a fake clock.
type fleet interface {
	apps() []app
	// app is the named app, nil when there is none.
	app(name string) app
}

// app is one supervised app.
type app interface {
	Name() string
	Config() *config.App
	Instances() []instance
	// Recycle replaces instance id with a new one, overlapped; it gives
	// way to an operator's operation on the app (a
	// *supervisor.PreemptedError). due, asked once the app is the
	// recycle's, says why the instance is no longer to be recycled (an
	// error, returned wrapped), nil when it still is.
	Recycle(ctx context.Context, id string, due func() error, reason string) error
}

// instance is one instance of an app.
type instance interface {
	ID() string
	// Stopping: a recycle, reload or scale is already replacing it.
	Stopping() bool
	// Process is the instance's current process.
	Process() process
	// Memory is the latest sample of the current process: private and
	// resident bytes; ok is false before the first sample.
	Memory() (private, rss uint64, ok bool)
	// Unhealthy is when failed probes took the instance out of rotation,
	// and what its last probe said, while they keep it out; ok is false
	// in any other state (starting, ready, crashed, stopping).
	Unhealthy() (since time.Time, detail string, ok bool)
}

// process is what an action needs of an instance's process: its age,
// and the placeholders of a custom command.
type process struct {
	PID, Port int
	StartedAt time.Time
}

// supervised is the fleet of a real supervisor.
type supervised struct{ sup Apps }

func (s supervised) apps() []app {
	as := s.sup.Apps()
	out := make([]app, len(as))
	for i, a := range as {
		out[i] = supApp{a}
	}
	return out
}

func (s supervised) app(name string) app {
	if a := s.sup.App(name); a != nil {
		return supApp{a}
	}
	return nil
}

type supApp struct{ a *supervisor.App }

func (a supApp) Name() string        { return a.a.Name() }
func (a supApp) Config() *config.App { return a.a.Config() }

func (a supApp) Instances() []instance {
	ins := a.a.Instances()
	out := make([]instance, len(ins))
	for i, in := range ins {
		out[i] = supInstance{in}
	}
	return out
}

func (a supApp) Recycle(ctx context.Context, id string, due func() error, reason string) error {
	return a.a.HealRecycle(ctx, id, due, reason)
}

type supInstance struct{ in *supervisor.Instance }

func (i supInstance) ID() string     { return i.in.ID }
func (i supInstance) Stopping() bool { return i.in.Stopping() }

func (i supInstance) Process() process {
	st := i.in.Status()
	return process{PID: st.PID, Port: st.Port, StartedAt: st.StartedAt}
}

func (i supInstance) Memory() (private, rss uint64, ok bool) {
	st := i.in.Stats()
	if st == nil {
		return 0, 0, false
	}
	return st.Private, st.RSS, true
}

func (i supInstance) Unhealthy() (since time.Time, detail string, ok bool) {
	since, ok = i.in.UnhealthySince()
	if !ok {
		return time.Time{}, "", false
	}
	return since, i.in.Status().Health, true
}
