package autoscale

import (
	"context"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Apps is the supervisor as New takes it; supervised narrows it to the
// fleet the scaler works on.
type Apps interface {
	Apps() []*supervisor.App
}

// fleet is everything the scaler reads of the supervisor and does
// through it. The measuring and deciding see only this, so that they can
// be driven with small fakes on a fake clock.
type fleet interface {
	apps() []app
}

// app is one supervised app.
type app interface {
	Name() string
	Config() *config.App
	// Unloaded: the app was unloaded when idle.
	Unloaded() bool
	// Held is how many requests wait for an instance now.
	Held() int
	Instances() []instance
	// ScaleFor scales from instances to n, or fails with
	// supervisor.ErrStaleDecision when the count is no longer from.
	ScaleFor(ctx context.Context, from, n int, why *telemetry.Event) error
	AutoscaleStatus() *supervisor.AutoscaleStatus
	SetAutoscaleStatus(st *supervisor.AutoscaleStatus)
}

// instance is one instance of an app.
type instance interface {
	// Ready: it takes requests.
	Ready() bool
	// Inflight is how many requests it serves now.
	Inflight() int64
	// CPUPercent is its CPU use between its last two samples, in percent
	// of one core; -1 when unknown.
	CPUPercent() float64
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

type supApp struct{ *supervisor.App }

func (a supApp) Unloaded() bool { return a.Pool().Unloaded() }
func (a supApp) Held() int      { return a.Pool().Waiting() }

func (a supApp) Instances() []instance {
	ins := a.App.Instances()
	out := make([]instance, len(ins))
	for i, in := range ins {
		out[i] = supInstance{in}
	}
	return out
}

func (a supApp) ScaleFor(ctx context.Context, from, n int, why *telemetry.Event) error {
	return a.App.ScaleFor(ctx, from, n, why, func(string, ...any) {})
}

type supInstance struct{ in *supervisor.Instance }

func (i supInstance) Ready() bool         { return i.in.State() == pool.Ready }
func (i supInstance) Inflight() int64     { return i.in.Status().Inflight }
func (i supInstance) CPUPercent() float64 { return i.in.CPUPercent() }
