// Package supervisor owns the app processes: it spawns each instance in its
// own process group with a port of its own, checks it until it is ready,
// probes it while it runs, restarts it with back-off when it dies, and
// stops it drain-first (out of rotation, in-flight requests finish, then
// SIGTERM, then SIGKILL). It is the only writer of instance state, which
// it publishes to the app's pool for the gateway to read.
//
// One instance's lifecycle (states as published; see package pool):
//
//	          spawn       startup check passes
//	   ┌──▶ starting ─────────────────────────▶ ready ⇄ unhealthy
//	   │       │ exit, or start_timeout           │        │
//	   │       ▼                                  │ exit   │ exit
//	   └── crashed ◀──────────────────────────────┴────────┘
//	 back-off: 0, 1s, 2s, 4s … 60s; reset after 60s of ready running
//
//	stop (shutdown, scale down, reload, recycle, idle unload):
//	   any ──▶ draining (out of rotation, in-flight finish ≤ stop_timeout)
//	       ──▶ SIGTERM to the group, ≤ stop_timeout ──▶ SIGKILL ──▶ stopped
package supervisor
