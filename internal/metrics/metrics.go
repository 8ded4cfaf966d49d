package metrics

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Metrics holds the registry and the event-driven metrics.
type Metrics struct {
	reg *prometheus.Registry

	requests *prometheus.CounterVec
	// rules and encoded count the route rules that acted and the answers
	// sent compressed.
	rules, encoded *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	attempts       *prometheus.CounterVec
	retries        *prometheus.CounterVec
	holdWait       *prometheus.HistogramVec
	probes         *prometheus.CounterVec
	probeLat       *prometheus.HistogramVec
	events         *prometheus.CounterVec
	exits          *prometheus.CounterVec
	certs          *certCollector
	// front is the listeners' counts (see front.go).
	front *frontCollector
	// traces is the span exporter's counts (see traces.go).
	traces *traceCollector
	// alerts and notifications are package alerts' (see alerts.go).
	alerts        *alertCollector
	notifications *prometheus.CounterVec
	// autoscale counts autoscale decisions (see autoscale.go).
	autoscale *prometheus.CounterVec

	// hot caches resolved series per app, status class and cause, so that
	// the request path does no label hashing.
	hot sync.Map // hotKey → *hotSeries
}

type hotKey struct {
	app, cause string
	class      int
}

type hotSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
	attempts prometheus.Counter
	holdWait prometheus.Observer
}

// Apps is what the collectors need of the supervisor: the apps whose
// instances and autoscale state they read at scrape time.
type Apps interface {
	Apps() []*supervisor.App
}

// New registers every metric on a new registry; sup provides the gauges
// read at scrape time.
func New(sup Apps) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), certs: &certCollector{}, front: &frontCollector{}, traces: &traceCollector{}, alerts: &alertCollector{}, notifications: newNotifications(),
		autoscale: newAutoscaleDecisions()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_requests_total", Help: "Requests by app, status class (2xx…5xx, 499 as 4xx) and cause (empty when the app answered normally).",
	}, []string{"app", "code", "cause"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gatehouse_request_duration_seconds", Help: "Time from request arrival to the end of the response, by app.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 230},
	}, []string{"app"})
	m.rules = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_route_rule_total", Help: "Requests a route rule answered or changed, by app and rule (access, redirect, static, basic_auth, forward_auth, rate_limit).",
	}, []string{"app", "rule"})
	m.encoded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_encoded_responses_total", Help: "Answers sent compressed (by gatehouse, or a precompressed file), by app and content encoding.",
	}, []string{"app", "encoding"})
	m.attempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_upstream_attempts_total", Help: "Attempts to forward a request to an instance, retries included.",
	}, []string{"app"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_upstream_retries_total", Help: "Attempts that failed and were retried on another instance, by the cause of the failure.",
	}, []string{"app", "cause"})
	m.holdWait = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gatehouse_hold_wait_seconds", Help: "Time requests were held waiting for a ready instance (only requests that were held).",
		Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"app"})
	m.probes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_probes_total", Help: "Health and startup probes by app and result (ok, fail).",
	}, []string{"app", "result"})
	m.probeLat = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "gatehouse_probe_duration_seconds", Help: "Probe latency by app.",
		Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 2, 5},
	}, []string{"app"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_events_total", Help: "Lifecycle events by app and type (start, exit, restart, recycle, auto_heal, …).",
	}, []string{"app", "type"})
	m.exits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_instance_exits_total", Help: "Instance process exits that gatehouse did not ask for, by app and reason (code_N or a signal name).",
	}, []string{"app", "reason"})
	m.reg.MustRegister(m.requests, m.rules, m.encoded, m.duration, m.attempts, m.retries, m.holdWait, m.probes, m.probeLat, m.events, m.exits,
		&instanceCollector{sup: sup}, m.certs, m.front, m.traces, m.alerts, m.notifications, m.autoscale, &autoscaleCollector{sup: sup},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{Namespace: "gatehouse"}))
	return m
}

// Handler serves /metrics. HandlerOpts.Registry is deliberately unset:
// it would register promhttp_metric_handler_errors_total, breaking the
// rule that every gatehouse metric name starts with gatehouse_.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry is the registry, for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveRequest counts a finished request.
func (m *Metrics) ObserveRequest(e *telemetry.AccessEntry) {
	class := e.Status / 100
	if class < 1 || class > 5 {
		class = 5
	}
	hs := m.series(hotKey{app: e.App, cause: e.Cause, class: class})
	hs.requests.Inc()
	if hs.duration != nil {
		hs.duration.Observe(e.Duration.Seconds())
		hs.attempts.Add(float64(e.Attempts))
		if e.Held > 0 {
			hs.holdWait.Observe(e.Held.Seconds())
		}
	}
	for _, c := range e.RetriedCauses {
		m.retries.WithLabelValues(e.App, c).Inc()
	}
	if e.Rule != "" {
		m.rules.WithLabelValues(e.App, ruleKind(e.Rule)).Inc()
	}
	if e.Encoding != "" {
		m.encoded.WithLabelValues(e.App, e.Encoding).Inc()
	}
}

// ruleKind is a rule's family, a bounded label: an access rule is logged
// with the entry that decided ("deny 10.0.0.0/8").
func ruleKind(rule string) string {
	switch rule {
	case "redirect", "static", "basic_auth", "forward_auth", "rate_limit":
		return rule
	}
	return "access"
}

func (m *Metrics) series(k hotKey) *hotSeries {
	if hs, ok := m.hot.Load(k); ok {
		return hs.(*hotSeries)
	}
	hs := &hotSeries{requests: m.requests.WithLabelValues(k.app, strconv.Itoa(k.class)+"xx", k.cause)}
	if k.app != "" {
		hs.duration = m.duration.WithLabelValues(k.app)
		hs.attempts = m.attempts.WithLabelValues(k.app)
		hs.holdWait = m.holdWait.WithLabelValues(k.app)
	}
	v, _ := m.hot.LoadOrStore(k, hs)
	return v.(*hotSeries)
}

// ObserveProbe counts a probe result.
func (m *Metrics) ObserveProbe(app, _ string, r probe.Result) {
	result := "ok"
	if !r.OK {
		result = "fail"
	}
	m.probes.WithLabelValues(app, result).Inc()
	m.probeLat.WithLabelValues(app).Observe(r.Latency.Seconds())
}

// ObserveEvent counts a lifecycle event.
func (m *Metrics) ObserveEvent(ev telemetry.Event) {
	m.events.WithLabelValues(ev.App, ev.Type).Inc()
	if ev.Type == telemetry.EventStart && ev.App != "" {
		// Let the app's start_timeout series exist at 0 before its first
		// timeout: increase() misses the increment a series is born
		// with, and the start-failure alerting rule reads it so.
		m.events.WithLabelValues(ev.App, telemetry.EventStartTimeout)
	}
	if ev.Type == telemetry.EventExit {
		reason := "unknown"
		switch {
		case ev.Signal != "":
			reason = ev.Signal
		case ev.ExitCode != nil:
			reason = "code_" + strconv.Itoa(*ev.ExitCode)
		}
		m.exits.WithLabelValues(ev.App, reason).Inc()
	}
}
