// Package supervisor owns the apps' sets of instances: it starts each
// app's instances (package instance), or adopts them from the gatehouse
// that ran before (package adoption), and changes the set: rolling
// reload, scale, recycle, restart, stop and start, idle unload and wake,
// one at a time per app, an operator's preempting auto-heal's recycle
// (opLock).
// It hands the instances to a successor and takes them back (Leave,
// TakeBack), tells each app's share of gatehouse's readiness, snapshots
// status, and has every running process sampled (package sampling). It is
// the only writer of instance state, which the instances publish to each
// app's pool for the gateway to read; its tests fail on any state change
// that pool's transition table does not have (main_test.go).
//
// An external pool (upstreams:, no command) has an instance per address
// its static entries and DNS answers want (package extpool); the
// supervisor adds and drains them to match.
//
// Every running process is recorded in data_dir/processes.json (package
// adoption); a gatehouse that starts finds there the processes a killed
// predecessor, or the gatehouse that upgraded to it, left running, adopts
// those its config still runs (adoptable) and stops the others.
package supervisor
