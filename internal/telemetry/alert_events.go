package telemetry

// The event type of package alerts' notifications. (Autoscale pinned at
// max is a scale event with trigger at_max, and the alert follows the
// autoscaler's status rather than events.)
const (
	// EventAlert is a notification of package alerts: Value is the alert
	// name, Trigger its status (firing or resolved), Detail its one-line
	// text ("[FIRING] no_ready_instance web: web has no ready instance").
	// App and Instance are the alert's.
	EventAlert = "alert"
)
