// Package instance owns one supervised slot of an app, with a stable id
// (web-1): its process incarnations, one after the other. It starts the
// slot's process (package process) with a port of its own (Ports), or
// adopts the one a previous gatehouse left it; checks it until it is
// ready, and looks for a port mismatch meanwhile (package portcheck);
// probes it while it runs; restarts it with back-off when it dies; and
// stops it drain-first (out of rotation, in-flight requests finish, then
// SIGTERM, then SIGKILL), or leaves it running for a successor. It
// records each process in the record of running processes (Records) and
// publishes the slot's state into the app's pool for the gateway. An
// external pool's slot is an upstream address instead of a process: the
// same probes and states, no process.
//
// One instance's lifecycle (starting, ready, unhealthy, crashed, draining,
// stopped) is drawn once, in package pool's doc, from the transition table
// in pool/state.go (pool.CheckTransition); an instance sets states only
// along its edges. What it adds to that drawing:
//
//	back-off before a restart: 0, 1s, 2s, 4s … 60s; reset after 60s of
//	ready running.
//	stop: draining (out of rotation, in-flight finish ≤ stop_timeout),
//	then SIGTERM to the group, ≤ stop_timeout, then SIGKILL, then stopped.
//
// The set of an app's instances, and every operation on it (reload,
// scale, recycle, restart, idle unload), are the supervisor's: what an
// instance needs of its app and of the supervisor comes in a Host.
package instance
