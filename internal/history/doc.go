// Package history owns the dashboard's memory of the last hour: a ring of
// one-second points per app, and one for all apps together, of what the
// gateway served (requests, 5xx by cause, the answers route rules gave
// instead of the app by cause, latency percentiles, requests in flight
// and held) and of what each instance used (memory, CPU), with
// gatehouse's own process beside the overall series. No Prometheus is
// needed to draw a chart of the last hour.
//
// The gateway feeds finished requests to Observe, which only adds to
// atomic counters; Run closes a second's counters once a second, reads
// the supervisor's status, appends a Point to each ring and wakes whoever
// waits on Next (the dashboard's live streams). A ring keeps Capacity
// points; older ones are overwritten.
package history
