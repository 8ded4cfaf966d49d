// Package pool owns an app's members (supervised instances or external
// upstreams) as the gateway sees them: their routable state, in-flight
// counts, passive ejection, max_inflight (a limit of requests per member),
// and the hold queue of requests waiting for a ready member or, under that
// limit, for a free slot (handed to the oldest waiter by Release).
//
// The supervisor is the only writer of a member's state; the gateway reads
// states and picks members. A member's state follows the supervisor's
// instance lifecycle. This is the one drawing of it (package supervisor
// refers here); the table in state.go is its source of truth, and
// CanTransition and Member.SetState enforce it:
//
//	            startup check passes              probes pass (healthy_threshold)
//	(new) ──▶ starting ─────────────────▶ ready ◀──────────────────┐
//	            │   ▲                       │  │                    │
//	exit,       │   │ back-off over,        │  └──▶ unhealthy ──────┘
//	start_timeout,  │ or restart asked      │  probes fail  │
//	cannot start│   │                       │  (unhealthy_  │
//	            ▼   │                       │   threshold)  │
//	          crashed ◀──────── exit ───────┴───────────────┘
//	            │
//	            └─ stopped during the back-off (no process) ──▶ stopped
//
//	an external upstream (no process) whose first probes fail
//	(unhealthy_threshold): starting ──▶ unhealthy
//
//	stop (shutdown, scale down, reload, recycle, idle unload), hard restart:
//	  starting, ready, unhealthy ──▶ draining ──▶ stopped (final)
//	                                     │ (out of rotation; in-flight finish
//	                                     │  ≤ stop_timeout; SIGTERM to the
//	                                     │  group, then SIGKILL)
//	                                     └──▶ starting (hard restart, same id)
//
// The same edges as a list (TransitionTable; a test keeps the two equal):
//
//	starting  → ready, unhealthy, crashed, draining
//	ready     → unhealthy, crashed, draining
//	unhealthy → ready, crashed, draining
//	draining  → stopped, starting
//	stopped   → (final)
//	crashed   → starting, stopped
//
// Setting a state to itself is a repeated publish, always allowed. Any
// other change is a programming error: SetState reports it (an error log
// line by default; tests fail on it, see SetIllegalTransitionFunc).
//
// Only ready members that are not ejected receive requests.
package pool
