package telemetry

// Event types of alerts and of the conditions they watch that no other
// event says. Kept in their own file so that the packages emitting them
// can be written side by side.
const (
	// EventAutoscaleAtMax: the autoscaler wants more instances than the
	// app's max allows, so it is pinned at max. Emitted once when that
	// begins (App set; Value the instance count, Detail why it wants
	// more), not on every evaluation.
	EventAutoscaleAtMax = "autoscale_at_max"
	// EventAutoscaleBelowMax ends an autoscale_at_max episode: the
	// autoscaler no longer wants more than max.
	EventAutoscaleBelowMax = "autoscale_below_max"

	// EventAlert is a notification of package alerts: Value is the alert
	// name, Trigger its status (firing or resolved), Detail its one-line
	// text ("[FIRING] no_ready_instance web: web has no ready instance").
	// App and Instance are the alert's.
	EventAlert = "alert"
)
