// Package autoscale owns autoscale: for every app with an autoscale:
// block it samples, every interval, the signals gatehouse measures itself
// (requests in flight per ready instance, held requests and their wait,
// p95 upstream latency, CPU per instance; requests held while no instance
// is ready wait for a start, a wake or a cold start, and are not load),
// keeps them over the rules' windows, and changes the app's instance count through the supervisor:
// out by a rule's step when that rule held over its whole window (never
// beyond max, not within cooldown_out), in by a rule's step only while
// every out rule is quiet, not within cooldown_in, never below min, and
// only when the instances left would not at once make an out rule fire
// (Azure's flapping guard). Scale-in is drain-first, as every scale is.
//
// Every decision is a scale event naming the rule and the measured value,
// a metric (through the Decided callback), and the app's autoscale status
// (supervisor.AutoscaleStatus). An app pinned at max while an out rule
// still holds gets one scale event with trigger at_max per episode, which
// diagnose's overload finding mentions.
//
// The gateway never imports this package: it sees requests only through
// Observe, called with each finished request's access entry.
package autoscale
