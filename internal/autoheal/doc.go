// Package autoheal owns auto-heal: it counts each instance's requests,
// slow requests and status codes over sliding intervals, watches its
// memory, and when a trigger fires, acts through the supervisor: recycle
// (overlapped, so no request fails), log an event, or run a custom
// command. It never acts on an instance younger than
// min_process_execution_time, and pauses for an app that hit
// max_recycles, so that a bad deploy cannot cause a recycle storm. Its
// recycle gives way to the operator's operations on the app
// (supervisor.App.HealRecycle): in an outage they are the fix.
//
// Proactive rules apply to every app, as on the seed platform: memory
// above 90% of memory_limit for 30s, or at least 80% of at least 5
// requests in 2 minutes taking 200s or more, recycles the instance. So
// does health.recycle_after: an instance its probes have kept unhealthy
// that long is recycled (trigger unhealthy), whatever auto_heal's
// action, within max_recycles.
package autoheal
