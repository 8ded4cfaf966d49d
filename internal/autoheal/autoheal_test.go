package autoheal_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A memory trigger of 150 MiB private bytes; the app retains 100 MiB per
// /alloc. One request stays under the limit; after the second the instance
// is recycled (auto_heal event naming the measured private bytes, then a
// recycle event), a replacement serves, and requests sent all through the
// recycle succeed.
func TestMemoryTriggerRecyclesWithoutFailedRequests(t *testing.T) {
	ah := autoHeal()
	ah.Triggers.Memory = &config.MemoryTrigger{PrivateBytes: config.Size(150 << 20)}
	g := start(t, 1, ah)
	c := client(t, 10*time.Second)
	old := only(t, g)

	// Load during the whole episode: concurrent GETs of / that must all
	// succeed, the recycle being overlapped.
	var sent, failed atomic.Int64
	var failMu sync.Mutex
	var failures []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body, _, err := tryGet(c, g.URL+"/")
				sent.Add(1)
				if err != nil || code != 200 {
					failed.Add(1)
					failMu.Lock()
					failures = append(failures, fmt.Sprintf("%d %q %v", code, body, err))
					failMu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	mustGet(t, c, g.URL+"/alloc?mb=100", 200)
	// Below the limit: several samples pass and nothing happens, though
	// the sampler does see the memory.
	testutil.WaitFor(t, 5*time.Second, "a sample showing the first 100 MiB", func() bool {
		g.Srv.Supervisor().SampleNow()
		in, ok := instance(g, old.ID)
		return ok && in.RSSBytes >= 90<<20
	})
	hold(t, g, time.Second, telemetry.EventAutoHeal, telemetry.EventRecycle)

	mustGet(t, c, g.URL+"/alloc?mb=100", 200)
	ev := waitEvent(t, g, 10*time.Second, telemetry.EventAutoHeal, old.ID, trigger("memory"))
	m := regexp.MustCompile(`private bytes (\d+) MiB`).FindStringSubmatch(ev.Value)
	if m == nil {
		t.Fatalf("auto_heal value %q does not name the measured private bytes", ev.Value)
	}
	if mb, _ := strconv.Atoi(m[1]); mb < 150 || mb > 400 {
		t.Errorf("auto_heal says private bytes %d MiB; the app retains 200 MiB (limit 150 MiB)", mb)
	}
	if ev.PID != old.PID {
		t.Errorf("auto_heal event pid = %d, want the instance's pid %d", ev.PID, old.PID)
	}
	rec := waitEvent(t, g, 10*time.Second, telemetry.EventRecycle, old.ID, nil)
	if rec.Time.Before(ev.Time) {
		t.Errorf("recycle event (%s) before the auto_heal event (%s)", rec.Time, ev.Time)
	}
	nw := waitReplaced(t, g, old.ID, 20*time.Second)
	if nw.PID == old.PID {
		t.Fatalf("replacement has the old pid %d", nw.PID)
	}
	if inst := mustGet(t, c, g.URL+"/", 200); inst != nw.ID {
		t.Errorf("after the recycle / was served by %q, want the replacement %s", inst, nw.ID)
	}
	if testutil.ProcessAlive(old.PID) {
		t.Errorf("old process %d still alive after the recycle", old.PID)
	}
	// A little more load on the replacement, then stop.
	time.Sleep(200 * time.Millisecond)
	stopLoad()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed during the recycle, e.g. %s", n, sent.Load(), failures[0])
	}
	if sent.Load() < 20 {
		t.Fatalf("only %d requests were sent during the episode; the load did not run", sent.Load())
	}
	t.Logf("%d requests during the episode, none failed; %s", sent.Load(), ev.Value)
}

// Three requests slower than time_taken on one instance of two recycle
// that instance only; the other keeps its pid.
func TestSlowRequestsRecycleOnlyThatInstance(t *testing.T) {
	ah := autoHeal()
	ah.Triggers.SlowRequests = []config.SlowTrigger{{TimeTaken: config.Duration(time.Second), Count: 3, Interval: config.Duration(30 * time.Second)}}
	g := start(t, 2, ah)
	c := client(t, 10*time.Second)
	before := map[string]int{}
	for _, in := range g.Instances("web") {
		before[in.ID] = in.PID
	}

	// Sequential slow requests until one instance has served three; the
	// other has then served at most two, below the trigger.
	served := map[string]int{}
	victim := ""
	for i := 0; i < 8 && victim == ""; i++ {
		inst := mustGet(t, c, g.URL+"/sleep?d=1100ms", 200)
		if _, ok := before[inst]; !ok {
			t.Fatalf("slow request served by %q, not one of %v", inst, before)
		}
		if served[inst]++; served[inst] == 3 {
			victim = inst
		}
	}
	if victim == "" {
		t.Fatalf("no instance served 3 of 8 slow requests: %v", served)
	}
	other := ""
	for id := range before {
		if id != victim {
			other = id
		}
	}
	ev := waitEvent(t, g, 5*time.Second, telemetry.EventAutoHeal, victim, trigger("slow_requests"))
	if !strings.Contains(ev.Value, "3 requests took 1s or more") {
		t.Errorf("auto_heal value = %q, want it to say 3 requests took 1s or more", ev.Value)
	}
	waitEvent(t, g, 5*time.Second, telemetry.EventRecycle, victim, nil)
	waitReplacedAmong(t, g, victim, 2)

	in, ok := instance(g, other)
	if !ok || in.PID != before[other] || in.State != "ready" {
		t.Fatalf("the other instance %s (served %d slow requests) changed: %+v, want ready with pid %d", other, served[other], in, before[other])
	}
	for _, e := range g.Events(telemetry.EventAutoHeal, telemetry.EventRecycle) {
		if e.Instance == other {
			t.Errorf("the other instance got an event: %s", describe([]telemetry.Event{e}))
		}
	}
}

// Five 500s within the interval recycle the instance; four do not.
func TestStatusCodesRecycle(t *testing.T) {
	ah := autoHeal()
	ah.Triggers.StatusCodes = []config.StatusTrigger{{Status: config.StatusRange{Min: 500, Max: 500}, Count: 5, Interval: config.Duration(time.Minute)}}
	g := start(t, 1, ah)
	c := client(t, 5*time.Second)
	old := only(t, g)

	for range 4 {
		mustGet(t, c, g.URL+"/status?code=500", 500)
	}
	// Other statuses do not count.
	mustGet(t, c, g.URL+"/status?code=503", 503)
	mustGet(t, c, g.URL+"/", 200)
	hold(t, g, 600*time.Millisecond, telemetry.EventAutoHeal, telemetry.EventRecycle)

	mustGet(t, c, g.URL+"/status?code=500", 500)
	ev := waitEvent(t, g, 5*time.Second, telemetry.EventAutoHeal, old.ID, trigger("status_codes"))
	if !strings.Contains(ev.Value, "5 responses with status 500") {
		t.Errorf("auto_heal value = %q, want it to say 5 responses with status 500", ev.Value)
	}
	waitEvent(t, g, 5*time.Second, telemetry.EventRecycle, old.ID, nil)
	nw := waitReplaced(t, g, old.ID, 20*time.Second)
	if nw.PID == old.PID {
		t.Fatalf("replacement has the old pid %d", nw.PID)
	}
	mustGet(t, c, g.URL+"/", 200)
}

// With min_process_execution_time 1h no trigger acts on the (young)
// instance: no auto_heal event, no recycle, same pid.
func TestMinProcessExecutionTimeProtectsYoungInstance(t *testing.T) {
	ah := autoHeal()
	ah.MinProcessExecutionTime = config.Duration(time.Hour)
	ah.Triggers.StatusCodes = []config.StatusTrigger{{Status: config.StatusRange{Min: 500, Max: 599}, Count: 2, Interval: config.Duration(time.Minute)}}
	// Memory too: it fires on every sample, whatever the traffic.
	ah.Triggers.Memory = &config.MemoryTrigger{PrivateBytes: config.Size(1 << 20)}
	g := start(t, 1, ah)
	c := client(t, 5*time.Second)
	old := only(t, g)

	for range 6 {
		mustGet(t, c, g.URL+"/status?code=500", 500)
	}
	hold(t, g, 1500*time.Millisecond, telemetry.EventAutoHeal, telemetry.EventRecycle)
	if now := only(t, g); now.PID != old.PID || now.ID != old.ID {
		t.Fatalf("instance changed from %s pid %d to %s pid %d", old.ID, old.PID, now.ID, now.PID)
	}
	mustGet(t, c, g.URL+"/", 200)
}

// With max_recycles {count: 2, per: 1h} and a trigger that keeps firing,
// two recycles happen, the third does not, and an auto_heal event (trigger
// max_recycles) says auto-heal paused. With the default count of 5 it
// would be the sixth recycle; a count of 2 proves the same rule (count
// recycles per period allowed, the next one refused) in less time.
func TestMaxRecyclesPausesAutoHeal(t *testing.T) {
	ah := autoHeal()
	ah.MaxRecycles = &config.RateLimit{Count: 2, Per: config.Duration(time.Hour)}
	// Any process has more than 1 MiB private: fires on every sample of
	// every instance, the replacements included.
	ah.Triggers.Memory = &config.MemoryTrigger{PrivateBytes: config.Size(1 << 20)}
	g := start(t, 1, ah)
	c := client(t, 5*time.Second)

	pause := waitEvent(t, g, 30*time.Second, telemetry.EventAutoHeal, "", trigger("max_recycles"))
	if !strings.Contains(pause.Detail, "paused") {
		t.Errorf("max_recycles event detail = %q, want it to say auto-heal paused", pause.Detail)
	}
	testutil.WaitFor(t, 20*time.Second, "the second recycle to complete", func() bool {
		ins := g.Instances("web")
		return len(ins) == 1 && ins[0].State == "ready" && len(g.Events(telemetry.EventRecycle)) == 2
	})
	// Keep watching: the trigger keeps firing, nothing more is recycled,
	// and the pause is announced once.
	cur := only(t, g)
	end := time.Now().Add(2 * time.Second)
	for time.Now().Before(end) {
		if n := len(g.Events(telemetry.EventRecycle)); n != 2 {
			t.Fatalf("%d recycles with max_recycles count 2:\n%s", n, describe(g.Events(telemetry.EventRecycle, telemetry.EventAutoHeal)))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if now := only(t, g); now.PID != cur.PID {
		t.Fatalf("instance replaced while auto-heal is paused: pid %d → %d", cur.PID, now.PID)
	}
	paused := 0
	for _, e := range g.Events(telemetry.EventAutoHeal) {
		if e.Trigger == "max_recycles" {
			paused++
		}
	}
	if paused != 1 {
		t.Errorf("%d max_recycles events, want one announcement of the pause:\n%s", paused, describe(g.Events(telemetry.EventAutoHeal)))
	}
	mustGet(t, c, g.URL+"/", 200)
}

// Action custom runs the command with the instance's placeholders filled
// and records its output in an auto_heal event; the instance is not
// recycled.
func TestCustomActionRunsCommand(t *testing.T) {
	ah := autoHeal()
	ah.Action = config.ActionCustom
	ah.Custom = config.Command{"sh", "-c", "echo healing {instance} pid={pid}"}
	ah.Triggers.StatusCodes = []config.StatusTrigger{{Status: config.StatusRange{Min: 500, Max: 500}, Count: 2, Interval: config.Duration(time.Minute)}}
	g := start(t, 1, ah)
	c := client(t, 5*time.Second)
	old := only(t, g)

	mustGet(t, c, g.URL+"/status?code=500", 500)
	mustGet(t, c, g.URL+"/status?code=500", 500)
	want := fmt.Sprintf("healing %s pid=%d", old.ID, old.PID)
	ev := waitEvent(t, g, 10*time.Second, telemetry.EventAutoHeal, old.ID, func(e telemetry.Event) bool {
		return strings.Contains(e.Detail, "output:")
	})
	if !strings.Contains(ev.Detail, "output: "+want) || !strings.Contains(ev.Detail, ": ok;") {
		t.Fatalf("custom action event detail = %q, want the command ok with output %q", ev.Detail, want)
	}
	if ev.Trigger != "status_codes" {
		t.Errorf("custom action event trigger = %q, want status_codes", ev.Trigger)
	}
	hold(t, g, 500*time.Millisecond, telemetry.EventRecycle)
	if now := only(t, g); now.PID != old.PID {
		t.Fatalf("pid changed %d → %d: action custom must not recycle", old.PID, now.PID)
	}
	mustGet(t, c, g.URL+"/", 200)
}

// Action log_event only logs: an auto_heal event, no recycle, same pid.
func TestLogEventActionOnlyLogs(t *testing.T) {
	ah := autoHeal()
	ah.Action = config.ActionLogEvent
	ah.Triggers.StatusCodes = []config.StatusTrigger{{Status: config.StatusRange{Min: 500, Max: 500}, Count: 2, Interval: config.Duration(time.Minute)}}
	g := start(t, 1, ah)
	c := client(t, 5*time.Second)
	old := only(t, g)

	mustGet(t, c, g.URL+"/status?code=500", 500)
	mustGet(t, c, g.URL+"/status?code=500", 500)
	ev := waitEvent(t, g, 5*time.Second, telemetry.EventAutoHeal, old.ID, trigger("status_codes"))
	if !strings.Contains(ev.Detail, "log_event") {
		t.Errorf("auto_heal detail = %q, want it to name action log_event", ev.Detail)
	}
	hold(t, g, time.Second, telemetry.EventRecycle)
	if now := only(t, g); now.PID != old.PID || now.State != "ready" {
		t.Fatalf("instance changed: %+v, want ready with pid %d", now, old.PID)
	}
	mustGet(t, c, g.URL+"/", 200)
}
