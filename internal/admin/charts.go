package admin

import (
	"maps"
	"math"
	"slices"

	"github.com/gatehouse/gatehouse/internal/history"
	"github.com/gatehouse/gatehouse/internal/svgchart"
	"html/template"
)

// slot is the points of one chart position: Step seconds of them, fewer
// at the edges of what was recorded.
type slot []history.Point

// slots groups points into chartSlots positions ending now. A point goes
// to the position of its second divided by the step, so that a position
// keeps the same seconds from one update to the next.
func slots(points []history.Point, win window) []slot {
	out := make([]slot, chartSlots)
	if len(points) == 0 {
		return out
	}
	step := int64(win.Step)
	lastGroup := points[len(points)-1].At.Unix() / step
	first := lastGroup - chartSlots + 1
	for _, p := range points {
		if g := p.At.Unix()/step - first; g >= 0 && g < chartSlots {
			out[g] = append(out[g], p)
		}
	}
	return out
}

// charts draws an app's charts (prefix names their ids) over win. The
// overall ones (all) show gatehouse's own memory and CPU instead of the
// instances'; an external pool (its instances are not processes of
// gatehouse's) has no memory and CPU charts.
func charts(prefix string, points []history.Point, win window, all, external bool) []template.HTML {
	s := slots(points, win)
	left := "-" + win.Name
	out := []template.HTML{
		svgchart.HTML(svgchart.Chart{ID: prefix + "-rps", Title: "Requests per second", Unit: "/s", Left: left, Slots: chartSlots,
			Series: []svgchart.Series{{Name: "requests", Values: rate(s, func(p history.Point) float64 { return float64(p.Requests) })}}}),
		svgchart.HTML(svgchart.Chart{ID: prefix + "-errors", Title: "5xx per second by cause", Unit: "/s", Left: left, Slots: chartSlots,
			Series: errorSeries(s)}),
		svgchart.HTML(svgchart.Chart{ID: prefix + "-latency", Title: "Latency", Unit: "ms", Left: left, Slots: chartSlots,
			Series: []svgchart.Series{
				{Name: "p50", Values: peak(s, func(p history.Point) float64 { return p.P50 })},
				{Name: "p95", Values: peak(s, func(p history.Point) float64 { return p.P95 })},
				{Name: "p99", Values: peak(s, func(p history.Point) float64 { return p.P99 })},
			}}),
		svgchart.HTML(svgchart.Chart{ID: prefix + "-load", Title: "In flight and held", Left: left, Slots: chartSlots,
			Series: []svgchart.Series{
				{Name: "in flight", Values: peak(s, func(p history.Point) float64 { return float64(p.Inflight) })},
				{Name: "held", Values: peak(s, func(p history.Point) float64 { return float64(p.Held) })},
			}}),
	}
	if external {
		return out
	}
	mem := instanceSeries(s, func(ip history.InstancePoint) float64 {
		if ip.RSS == 0 {
			return math.NaN()
		}
		return float64(ip.RSS) / (1 << 20)
	})
	cpu := instanceSeries(s, func(ip history.InstancePoint) float64 { return ip.CPU })
	memTitle, cpuTitle := "Memory per instance", "CPU per instance"
	if all {
		memTitle, cpuTitle = "gatehouse memory", "gatehouse CPU"
	}
	return append(out,
		svgchart.HTML(svgchart.Chart{ID: prefix + "-memory", Title: memTitle, Unit: "MiB", Left: left, Slots: chartSlots, Series: mem}),
		svgchart.HTML(svgchart.Chart{ID: prefix + "-cpu", Title: cpuTitle, Unit: "%", Left: left, Slots: chartSlots, Series: cpu}))
}

// rate is a per-second average of a count over each slot.
func rate(s []slot, count func(history.Point) float64) []float64 {
	out := make([]float64, len(s))
	for i, sl := range s {
		if len(sl) == 0 {
			out[i] = math.NaN()
			continue
		}
		var sum float64
		for _, p := range sl {
			sum += count(p)
		}
		out[i] = sum / float64(len(sl))
	}
	return out
}

// peak is the highest value of each slot (NaN when none): a latency
// spike stays visible when a wide window folds seconds together.
func peak(s []slot, value func(history.Point) float64) []float64 {
	out := make([]float64, len(s))
	for i, sl := range s {
		out[i] = math.NaN()
		for _, p := range sl {
			if v := value(p); !math.IsNaN(v) && (math.IsNaN(out[i]) || v > out[i]) {
				out[i] = v
			}
		}
	}
	return out
}

// errorSeries is one series per cause seen in the window (sorted, so
// that a cause keeps its colour as the window slides), as a rate; a
// single flat "5xx" series at zero when there was none.
func errorSeries(s []slot) []svgchart.Series {
	index := map[string]int{}
	for _, sl := range s {
		for _, p := range sl {
			for _, e := range p.Errors {
				index[e.Cause] = 0
			}
		}
	}
	if len(index) == 0 {
		return []svgchart.Series{{Name: "5xx", Values: rate(s, func(history.Point) float64 { return 0 })}}
	}
	causes := slices.Sorted(maps.Keys(index))
	out := make([]svgchart.Series, len(causes))
	for i, c := range causes {
		index[c] = i
		out[i] = svgchart.Series{Name: c, Values: make([]float64, len(s))}
	}
	for j, sl := range s {
		for i := range out {
			out[i].Values[j] = math.NaN()
			if len(sl) > 0 {
				out[i].Values[j] = 0
			}
		}
		for _, p := range sl {
			for _, e := range p.Errors {
				out[index[e.Cause]].Values[j] += float64(e.N) / float64(len(sl))
			}
		}
	}
	return out
}

// maxInstanceSeries bounds a chart's lines: after many reloads, the
// instances seen last are the ones shown.
const maxInstanceSeries = 12

// instanceSeries is one series per instance seen in the window (the
// last maxInstanceSeries to appear, sorted by id so that each keeps its
// colour), its value averaged over each slot (NaN where it did not run).
func instanceSeries(s []slot, value func(history.InstancePoint) float64) []svgchart.Series {
	var order []string
	seen := map[string]bool{}
	for _, sl := range s {
		for _, p := range sl {
			for _, ip := range p.Instances {
				if !seen[ip.ID] {
					seen[ip.ID] = true
					order = append(order, ip.ID)
				}
			}
		}
	}
	if len(order) > maxInstanceSeries {
		order = order[len(order)-maxInstanceSeries:]
	}
	slices.Sort(order)
	index := make(map[string]int, len(order))
	out := make([]svgchart.Series, len(order))
	for i, id := range order {
		index[id] = i
		out[i] = svgchart.Series{Name: id, Values: make([]float64, len(s))}
	}
	sum := make([]float64, len(order))
	n := make([]int, len(order))
	for j, sl := range s {
		clear(sum)
		clear(n)
		for _, p := range sl {
			for _, ip := range p.Instances {
				i, ok := index[ip.ID]
				if v := value(ip); ok && !math.IsNaN(v) {
					sum[i] += v
					n[i]++
				}
			}
		}
		for i := range out {
			out[i].Values[j] = math.NaN()
			if n[i] > 0 {
				out[i].Values[j] = sum[i] / float64(n[i])
			}
		}
	}
	return out
}
