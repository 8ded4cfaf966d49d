package alerts

import (
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// Apps is the supervisor as New takes it; supervised narrows it to the
// fleet the manager looks at.
type Apps interface {
	Apps() []*supervisor.App
}

// fleet is everything the manager's periodic look reads of the
// supervisor, so that it can be driven with small fakes on a fake clock.
type fleet interface {
	apps() []app
}

// app is one supervised app.
type app interface {
	Name() string
	Config() *config.App
	// Readiness is supervisor.App.Readiness.
	Readiness() (ready, need int)
	Instances() []instance
	AutoscaleStatus() *supervisor.AutoscaleStatus
}

// instance is one instance of an app.
type instance interface {
	ID() string
	State() pool.State
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

func (a supApp) Instances() []instance {
	ins := a.App.Instances()
	out := make([]instance, len(ins))
	for i, in := range ins {
		out[i] = supInstance{in}
	}
	return out
}

type supInstance struct{ in *supervisor.Instance }

func (i supInstance) ID() string        { return i.in.ID }
func (i supInstance) State() pool.State { return i.in.State() }
