package pool

// State is a member's lifecycle state. The names are public (status JSON).
type State int32

const (
	Starting State = iota
	Ready
	Unhealthy
	Draining
	Stopped
	Crashed
)

var stateNames = [...]string{"starting", "ready", "unhealthy", "draining", "stopped", "crashed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}
