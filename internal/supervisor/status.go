package supervisor

import (
	"time"

	"github.com/gatehouse/gatehouse/internal/instance"
)

// AppStatus is one app in GET /api/status.
type AppStatus struct {
	Name      string           `json:"name"`
	Instances []InstanceStatus `json:"instances"`
	// Waiting is the number of requests held for a ready instance.
	Waiting int `json:"waiting"`
	// Autoscale is the autoscaler's state for an app with an autoscale:
	// block; absent otherwise.
	Autoscale *AutoscaleStatus `json:"autoscale,omitempty"`
	// LastRecycle is the app's last recycle that replaced its instance
	// (by hand, or auto-heal's: its reason says which trigger); absent
	// before the first.
	LastRecycle *RecycleStatus `json:"last_recycle,omitempty"`
}

// RecycleStatus is one recycle: the instance, the one that replaced it,
// why, and when the replacement was ready and the instance stopped.
type RecycleStatus struct {
	Instance    string    `json:"instance"`
	Replacement string    `json:"replacement"`
	Reason      string    `json:"reason"`
	At          time.Time `json:"at"`
}

// AutoscaleStatus is an app's autoscale state, as the autoscaler last
// published it (see App.SetAutoscaleStatus).
type AutoscaleStatus struct {
	Min int `json:"min"`
	Max int `json:"max"`
	// Desired is the instance count autoscale last asked for (or found,
	// after a manual scale).
	Desired int `json:"desired"`
	// AtMax: a scale-out rule holds but the app already runs max
	// instances.
	AtMax bool `json:"at_max"`
	// Scaling: a scale autoscale asked for is under way.
	Scaling bool `json:"scaling,omitempty"`
	// LastDecision says what autoscale last did and why, e.g.
	// "2 → 3 instances: inflight_per_instance 6.2 > 4 for 30s"; empty
	// before its first decision.
	LastDecision   string    `json:"last_decision,omitempty"`
	LastDecisionAt time.Time `json:"last_decision_at,omitzero"`
	// Signals are the latest measured values by metric name; a metric
	// that could not be measured (cpu_percent before two samples) is
	// left out.
	Signals map[string]float64 `json:"signals,omitempty"`
}

// InstanceStatus is one instance in GET /api/status (see package
// instance).
type InstanceStatus = instance.Status

// Status snapshots every app and instance.
func (s *Supervisor) Status() []AppStatus {
	var out []AppStatus
	for _, a := range s.Apps() {
		as := AppStatus{Name: a.name, Instances: []InstanceStatus{}, Waiting: a.pool.Waiting(), Autoscale: a.autoscale.Load(),
			LastRecycle: a.lastRecycle.Load()}
		for _, in := range a.Instances() {
			as.Instances = append(as.Instances, in.Status())
		}
		// During an upgrade this process still serves through the
		// instances it left to its successor.
		for _, in := range a.leftServing() {
			st := in.Status()
			st.Health = "left to the new gatehouse process: " + st.Health
			as.Instances = append(as.Instances, st)
		}
		out = append(out, as)
	}
	return out
}
