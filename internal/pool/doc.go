// Package pool owns an app's members (supervised instances or external
// upstreams) as the gateway sees them: their routable state, in-flight
// counts, passive ejection, and the hold queue of requests waiting for a
// ready member.
//
// The supervisor is the only writer of a member's state; the gateway reads
// states and picks members. A member's state follows the supervisor's
// instance lifecycle:
//
//	          start                probe ok
//	(new) ──▶ starting ─────────────────────▶ ready ◀───────┐
//	             │                             │  ▲          │ probe ok
//	             │ exit / start_timeout        │  │          │ (healthy_threshold)
//	             ▼                             ▼  │          │
//	          crashed ◀──────── exit ──── unhealthy ─────────┘
//	             │                     (unhealthy_threshold)
//	             │ back-off, restart
//	             └──▶ starting
//
//	any live state ──stop/reload/scale/recycle──▶ draining ──▶ stopped
//
// Only ready members that are not ejected receive requests.
package pool
