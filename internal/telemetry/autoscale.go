package telemetry

// ScaleAtMax is the Trigger of a scale event that says an autoscaled app
// runs its max instances while a scale-out rule still holds: it needed
// more capacity than it may have.
const ScaleAtMax = "at_max"
