// Package extpool owns which members an external pool (an app with
// upstreams: and no command) should have: its static addresses, and what
// its dns:// and dns+srv:// entries answer. A Watch looks the entries up
// (through package discovery) again and again, as their TTLs and the
// app's dns: block say; it keeps each entry's last good answer while its
// lookups fail, reports changes, failures and recoveries as dns_update,
// dns_error and dns_recovered events, and after each round hands the
// wanted set to the pool's owner (Members), which adds and drains members
// to match.
//
// It knows nothing of instances or probes: the supervisor owns the
// members, and runs the Watch's goroutine.
package extpool
