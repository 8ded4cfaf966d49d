package metrics

import "github.com/prometheus/client_golang/prometheus"

// autoscaleCollector reads each autoscaled app's state from the
// supervisor at scrape time.
type autoscaleCollector struct {
	sup Apps
}

var (
	descDesired = prometheus.NewDesc("gatehouse_autoscale_desired_instances", "Instances autoscale last asked for, by app (only apps with an autoscale block).", []string{"app"}, nil)
	descAtMax   = prometheus.NewDesc("gatehouse_autoscale_at_max", "1 while an autoscaled app runs its max instances and a scale-out rule still holds.", []string{"app"}, nil)
	descBounds  = prometheus.NewDesc("gatehouse_autoscale_bounds_instances", "An autoscaled app's min and max instances (bound=min|max).", []string{"app", "bound"}, nil)
)

func (c *autoscaleCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descDesired
	ch <- descAtMax
	ch <- descBounds
}

func (c *autoscaleCollector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.sup.Apps() {
		st := a.AutoscaleStatus()
		if st == nil {
			continue
		}
		atMax := 0.0
		if st.AtMax {
			atMax = 1
		}
		ch <- prometheus.MustNewConstMetric(descDesired, prometheus.GaugeValue, float64(st.Desired), a.Name())
		ch <- prometheus.MustNewConstMetric(descAtMax, prometheus.GaugeValue, atMax, a.Name())
		ch <- prometheus.MustNewConstMetric(descBounds, prometheus.GaugeValue, float64(st.Min), a.Name(), "min")
		ch <- prometheus.MustNewConstMetric(descBounds, prometheus.GaugeValue, float64(st.Max), a.Name(), "max")
	}
}

// newAutoscaleDecisions is gatehouse_autoscale_decisions_total.
func newAutoscaleDecisions() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gatehouse_autoscale_decisions_total",
		Help: "Autoscale decisions by app, direction (out, in, at_max: a scale-out rule held at max instances) and the rule's metric.",
	}, []string{"app", "direction", "rule"})
}

// ObserveAutoscale counts an autoscale decision.
func (m *Metrics) ObserveAutoscale(app, direction, rule string) {
	m.autoscale.WithLabelValues(app, direction, rule).Inc()
}
