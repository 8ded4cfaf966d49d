package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// AlertCount is what the alerts gauge reads of one alert of one app.
// metrics does not import alerts: the caller converts.
type AlertCount struct {
	Alert, App string
	Firing     int
}

var descAlertsFiring = prometheus.NewDesc("gatehouse_alerts_firing",
	"Alert episodes firing now, by alert and app (empty for a certificate's).", []string{"alert", "app"}, nil)

// alertCollector reads the alerts at scrape time. It is registered from
// the start, empty until SetAlerts, so that the name is known even
// without an alerts: block.
type alertCollector struct {
	read atomic.Pointer[func() []AlertCount]
}

// SetAlerts makes /metrics report read's firing alerts.
func (m *Metrics) SetAlerts(read func() []AlertCount) { m.alerts.read.Store(&read) }

// ObserveNotification counts an alert notification's outcome (sent,
// retried, failed, dropped) for a receiver.
func (m *Metrics) ObserveNotification(receiver, result string) {
	m.notifications.WithLabelValues(receiver, result).Inc()
}

func newNotifications() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_alert_notifications_total",
		Help: "Alert notifications by receiver and result: sent, retried (an attempt failed; another follows), failed (gave up), dropped (queue full or shutdown).",
	}, []string{"receiver", "result"})
}

func (c *alertCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descAlertsFiring }

func (c *alertCollector) Collect(ch chan<- prometheus.Metric) {
	read := c.read.Load()
	if read == nil {
		return
	}
	for _, a := range (*read)() {
		ch <- prometheus.MustNewConstMetric(descAlertsFiring, prometheus.GaugeValue, float64(a.Firing), a.Alert, a.App)
	}
}
