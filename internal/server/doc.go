// Package server owns one running gatehouse: it builds the telemetry,
// supervisor, gateway and admin API from a config, binds the listeners,
// and runs them until its context ends, shutting down in order: stop
// accepting, let in-flight requests finish, stop every instance
// drain-first, then close the logs.
package server
