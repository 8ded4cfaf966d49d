package admin

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/history"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// The dashboard adds less than 5% CPU to gatehouse with one browser open.
// Its cost is one update a second per open page: gathering the data and
// rendering every fragment, which is what BenchmarkDashboardUpdate
// measures, for 2 apps with a full hour of history behind them. It reports
// the cost as "%core": the process' CPU time per update as a percent of
// one core, at one update a second. (bench/proxies.sh measures the whole
// under load; this isolates the dashboard's share.)
//
//	go test -run '^$' -bench DashboardUpdate ./internal/admin

// benchSource is the supervisor's status for the history: two apps of
// three instances with their memory and CPU.
type benchSource struct{}

func (benchSource) Status() []supervisor.AppStatus {
	var out []supervisor.AppStatus
	for _, app := range []string{"web", "api"} {
		as := supervisor.AppStatus{Name: app, Waiting: 1}
		for i := 1; i <= 3; i++ {
			cpu := 12.5 * float64(i)
			as.Instances = append(as.Instances, supervisor.InstanceStatus{
				ID: fmt.Sprintf("%s-%d", app, i), PID: 1000 + i, Port: 20000 + i, State: "ready", Health: "200 OK in 1ms",
				StartedAt: time.Now().Add(-time.Hour), Inflight: int64(i), RSSBytes: uint64(40+i) << 20, CPUPercent: &cpu,
			})
		}
		out = append(out, as)
	}
	return out
}

// fullHour records an hour of seconds: some hundred requests a second
// per app with varied latencies, and 5xx of two causes now and then.
func fullHour() *history.Recorder {
	rec := history.New(benchSource{}, func() history.InstancePoint {
		return history.InstancePoint{ID: history.Self, RSS: 60 << 20, CPU: 4}
	})
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	for s := range history.Capacity {
		for _, app := range []string{"web", "api"} {
			for i := range 80 + s%50 {
				rec.Observe(&telemetry.AccessEntry{App: app, Status: 200, Duration: time.Duration(1+i%40) * time.Millisecond})
			}
			if s%7 == 0 {
				rec.Observe(&telemetry.AccessEntry{App: app, Status: 502, Cause: "upstream_reset", Duration: time.Millisecond})
			}
			if s%11 == 0 {
				rec.Observe(&telemetry.AccessEntry{App: app, Status: 500, Duration: 3 * time.Millisecond})
			}
		}
		rec.Sample(start.Add(time.Duration(s) * time.Second))
	}
	return rec
}

func BenchmarkDashboardUpdate(b *testing.B) {
	cfg := config.Default()
	cfg.Apps = map[string]*config.App{}
	for _, name := range []string{"web", "api"} {
		cfg.Apps[name] = config.NewApp(name)
		cfg.Order = append(cfg.Order, name)
	}
	events := telemetry.NewEvents(nil, 0)
	for i := range dashboardEvents {
		events.Emit(telemetry.Event{App: "web", Instance: "web-1", Type: telemetry.EventExit, Detail: fmt.Sprintf("exit %d", i)})
	}
	db := newDashboard(Deps{Supervisor: supervisor.New(cfg, supervisor.Options{}), Events: events, History: fullHour()}, nil)
	for _, win := range windows {
		b.Run(win.Name, func(b *testing.B) {
			var bytes int
			cpu0 := processCPU(b)
			for b.Loop() {
				frags, err := db.fragments(db.data(win))
				if err != nil {
					b.Fatal(err)
				}
				bytes = 0
				for _, f := range frags {
					bytes += len(f)
				}
			}
			// CPU time rather than wall time: on a busy machine the wall
			// time counts other processes' turns; the process' CPU time
			// includes the garbage collector's share.
			perUpdate := (processCPU(b) - cpu0) / time.Duration(b.N)
			b.ReportMetric(float64(perUpdate)/float64(time.Second)*100, "%core")
			b.ReportMetric(float64(bytes), "bytes/update")
		})
	}
}

// processCPU is the user and system CPU time of the test process so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
