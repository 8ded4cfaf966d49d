package metrics

import "github.com/prometheus/client_golang/prometheus"

// instanceCollector reads per-instance state from the supervisor at scrape
// time, so that gauges never go stale when instances come and go.
type instanceCollector struct {
	sup Apps
}

var (
	descInstances = prometheus.NewDesc("gatehouse_instances", "Instances by app and state.", []string{"app", "state"}, nil)
	descRSS       = prometheus.NewDesc("gatehouse_instance_resident_memory_bytes", "Resident memory of the instance's process tree.", []string{"app", "instance"}, nil)
	descPrivate   = prometheus.NewDesc("gatehouse_instance_private_memory_bytes", "Private (unshared) memory of the instance's process tree.", []string{"app", "instance"}, nil)
	descCPU       = prometheus.NewDesc("gatehouse_instance_cpu_seconds_total", "CPU time of the instance's current process tree.", []string{"app", "instance"}, nil)
	descThreads   = prometheus.NewDesc("gatehouse_instance_threads", "Threads of the instance's process tree.", []string{"app", "instance"}, nil)
	descFDs       = prometheus.NewDesc("gatehouse_instance_open_fds", "Open file descriptors of the instance's process tree.", []string{"app", "instance"}, nil)
	descOutbound  = prometheus.NewDesc("gatehouse_instance_outbound_connections", "Outbound TCP connections of the instance's process tree.", []string{"app", "instance"}, nil)
	descRestarts  = prometheus.NewDesc("gatehouse_instance_restarts", "Restarts of the instance under its id.", []string{"app", "instance"}, nil)
	descInflight  = prometheus.NewDesc("gatehouse_instance_inflight_requests", "Requests in flight to the instance.", []string{"app", "instance"}, nil)
	descTunnels   = prometheus.NewDesc("gatehouse_instance_tunnels", "Upgraded conversations (WebSockets) open to the instance; each also counts as a request in flight.", []string{"app", "instance"}, nil)
	descWaiting   = prometheus.NewDesc("gatehouse_hold_queue_depth", "Requests held waiting for a ready instance.", []string{"app"}, nil)
	descMaxInfl   = prometheus.NewDesc("gatehouse_max_inflight", "The app's max_inflight: requests one instance is sent at once (0: no limit).", []string{"app"}, nil)
	descHeldLimit = prometheus.NewDesc("gatehouse_held_at_limit_total", "Requests held because every ready instance was at max_inflight.", []string{"app"}, nil)
)

var allStates = []string{"starting", "ready", "unhealthy", "draining", "stopped", "crashed"}

func (c *instanceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInstances, descRSS, descPrivate, descCPU, descThreads, descFDs, descOutbound, descRestarts, descInflight, descTunnels, descWaiting, descMaxInfl, descHeldLimit} {
		ch <- d
	}
}

func (c *instanceCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, a := range c.sup.Apps() {
		counts := map[string]int{}
		for _, in := range a.Instances() {
			st := in.Status()
			counts[st.State]++
			gauge(descRestarts, float64(st.Restarts), a.Name(), st.ID)
			gauge(descInflight, float64(st.Inflight), a.Name(), st.ID)
			gauge(descTunnels, float64(st.Tunnels), a.Name(), st.ID)
			ps := in.Stats()
			if ps == nil {
				continue
			}
			gauge(descRSS, float64(ps.RSS), a.Name(), st.ID)
			gauge(descPrivate, float64(ps.Private), a.Name(), st.ID)
			ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, ps.CPUSeconds, a.Name(), st.ID)
			gauge(descThreads, float64(ps.Threads), a.Name(), st.ID)
			gauge(descFDs, float64(ps.FDs), a.Name(), st.ID)
			gauge(descOutbound, float64(ps.OutboundTotal), a.Name(), st.ID)
		}
		for _, s := range allStates {
			gauge(descInstances, float64(counts[s]), a.Name(), s)
		}
		gauge(descWaiting, float64(a.Pool().Waiting()), a.Name())
		gauge(descMaxInfl, float64(a.Pool().MaxInflight()), a.Name())
		ch <- prometheus.MustNewConstMetric(descHeldLimit, prometheus.CounterValue, float64(a.Pool().LimitHeld()), a.Name())
	}
}
