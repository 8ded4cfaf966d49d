// Package alerts owns alerting: it turns lifecycle events, request
// outcomes and periodic looks at the supervisor into alert episodes (an
// app with no ready instance, a restart loop, a start failure, auto-heal
// paused at max_recycles, a 5xx rate above a threshold, a certificate
// near expiry, autoscale pinned at max), each keyed by alert name, app
// and instance and going firing → resolved, and sends one notification
// per change to the webhook receivers of the alerts: block.
//
// Delivery is asynchronous and bounded: every receiver has its own queue
// (full: the oldest is dropped and counted), rate limit and retries with
// exponential back-off, so a receiver that is slow or down delays neither
// the request path (Observe is a few atomic adds) nor event delivery. A
// still-firing alert is notified again only after repeat_interval.
//
// It reads config, telemetry and the supervisor; nothing on the request
// path imports it: the server feeds it through its observe hook.
package alerts
