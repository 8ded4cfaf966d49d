// Package metrics owns gatehouse's Prometheus metrics: an own registry
// (no global state), request counters fed from the gateway's access
// entries, probe results from the supervisor, and per-instance gauges read
// from the supervisor at scrape time. Every name starts with gatehouse_.
package metrics
