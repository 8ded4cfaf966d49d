// Package supervisor owns the app processes: it spawns each instance in its
// own process group with a port of its own, checks it until it is ready,
// probes it while it runs, restarts it with back-off when it dies, and
// stops it drain-first (out of rotation, in-flight requests finish, then
// SIGTERM, then SIGKILL). It is the only writer of instance state, which
// it publishes to the app's pool for the gateway to read.
//
// One instance's lifecycle (starting, ready, unhealthy, crashed, draining,
// stopped) is drawn once, in package pool's doc, from the transition table
// in pool/state.go (pool.CanTransition); the supervisor sets states only
// along its edges, and its tests fail on any other (main_test.go). What
// the supervisor adds to that drawing:
//
//	back-off before a restart: 0, 1s, 2s, 4s … 60s; reset after 60s of
//	ready running.
//	stop: draining (out of rotation, in-flight finish ≤ stop_timeout),
//	then SIGTERM to the group, ≤ stop_timeout, then SIGKILL, then stopped.
//
// A starting process whose probes are refused is looked at for a port
// mismatch (portcheck.go): listening, and answering, on other ports than
// its PORT, it will never be ready, and the supervisor says so at once
// (a port_mismatch event, and the note of held requests' 503s) rather
// than at start_timeout.
//
// Commands: a command string (a Procfile line, command: "…") is run
// without a shell when it has no shell syntax, and with "sh -c exec …"
// when it is one simple command, so that the app is gatehouse's direct
// child (see commandArgv). Every running process is recorded in
// data_dir/processes.json (ProcessRecord); a gatehouse that starts finds
// the processes a killed predecessor left running there and stops them.
package supervisor
