package autoheal

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// req is one finished request of a trigger table: served by the
// instance in slot inst, gap after the one before it.
type req struct {
	inst   int
	path   string
	status int
	took   time.Duration
	gap    time.Duration
}

// The request triggers, through the healer on a fake fleet: a trigger
// fires on the request that completes its count within its interval,
// names what it measured, and recycles that instance only; requests it
// does not match (another status, a fast one, another path) do not
// count, and one short of the count does nothing. A trigger's path is
// matched as routes match it: a path with parameters in its segments
// or doubled slashes is the path without them, as the app reads it.
func TestRequestTriggersRecycleThatInstance(t *testing.T) {
	slow := config.Triggers{SlowRequests: []config.SlowTrigger{{TimeTaken: config.Duration(time.Second), Count: 3, Interval: config.Duration(30 * time.Second)}}}
	status := config.Triggers{StatusCodes: []config.StatusTrigger{{Status: config.StatusRange{Min: 500, Max: 500}, Count: 5, Interval: config.Duration(time.Minute)}}}
	apiStatus := config.Triggers{StatusCodes: []config.StatusTrigger{{Status: config.StatusRange{Min: 500, Max: 599}, Path: "/api", Count: 2, Interval: config.Duration(time.Minute)}}}
	slowUnder := config.Triggers{SlowRequests: []config.SlowTrigger{{TimeTaken: config.Duration(time.Second), Path: "/slow/", Count: 3, Interval: config.Duration(30 * time.Second)}}}
	many := config.Triggers{Requests: &config.RequestsTrigger{Count: 10, Interval: config.Duration(time.Minute)}}
	ok := req{path: "/", status: 200, took: 10 * time.Millisecond, gap: 100 * time.Millisecond}
	tests := []struct {
		name     string
		triggers config.Triggers
		reqs     []req
		// trigger and value of the auto_heal event of instance 0; none
		// when trigger is "".
		trigger, value string
	}{
		{"slow requests: three of one instance, the other's two do not count",
			slow, []req{
				{0, "/sleep", 200, 1100 * time.Millisecond, 0},
				{1, "/sleep", 200, 1100 * time.Millisecond, 1100 * time.Millisecond},
				{0, "/sleep", 200, 1100 * time.Millisecond, 1100 * time.Millisecond},
				{1, "/sleep", 200, 1100 * time.Millisecond, 1100 * time.Millisecond},
				{0, "/sleep", 200, 1100 * time.Millisecond, 1100 * time.Millisecond},
			},
			"slow_requests", "3 requests took 1s or more within 30s"},
		{"slow requests: fast ones do not count",
			slow, slices.Concat(slices.Repeat([]req{{0, "/", 200, 1100 * time.Millisecond, time.Second}}, 2), slices.Repeat([]req{ok}, 10)), "", ""},
		{"slow requests: the third outside the interval",
			slow, []req{{0, "/", 200, time.Second, 0}, {0, "/", 200, time.Second, 20 * time.Second}, {0, "/", 200, time.Second, 11 * time.Second}}, "", ""},
		{"status codes: four 500s, a 503 and a 200 do nothing",
			status, slices.Concat(slices.Repeat([]req{{0, "/status", 500, time.Millisecond, 100 * time.Millisecond}}, 4), []req{{0, "/status", 503, time.Millisecond, 0}, ok}), "", ""},
		{"status codes: the fifth 500 recycles",
			status, slices.Concat(slices.Repeat([]req{{0, "/status", 500, time.Millisecond, 100 * time.Millisecond}}, 4), []req{{0, "/status", 503, time.Millisecond, 0}, ok},
				slices.Repeat([]req{{0, "/status", 500, time.Millisecond, 100 * time.Millisecond}}, 1)),
			"status_codes", "5 responses with status 500 within 1m0s"},
		{"status codes under a path",
			apiStatus, slices.Concat(slices.Repeat([]req{{0, "/other", 502, time.Millisecond, 0}}, 3), slices.Repeat([]req{{0, "/api/x", 503, time.Millisecond, 0}}, 2)),
			"status_codes", "2 responses with status 500-599 under /api within 1m0s"},
		{"slow requests under a path, spelled with parameters or doubled slashes",
			slowUnder, []req{
				{0, "/slow;x/a", 200, 1100 * time.Millisecond, 0},
				{0, "//slow//b", 200, 1100 * time.Millisecond, 0},
				{0, "/;x/slow/c", 200, 1100 * time.Millisecond, 0},
			},
			"slow_requests", "3 requests under /slow/ took 1s or more within 30s"},
		{"slow requests under a path: another path with parameters does not count",
			slowUnder, slices.Repeat([]req{{0, "/slowly;x/a", 200, 1100 * time.Millisecond, 0}}, 3), "", ""},
		{"status codes under a path, spelled with parameters or doubled slashes",
			apiStatus, []req{{0, "/;x/api/x", 503, time.Millisecond, 0}, {0, "//api/y", 502, time.Millisecond, 0}},
			"status_codes", "2 responses with status 500-599 under /api within 1m0s"},
		{"requests: the tenth within the interval",
			many, slices.Repeat([]req{ok}, 10), "requests", "10 requests in 1m0s"},
		{"proactive: most requests of 200s or more, whatever the config",
			config.Triggers{}, slices.Repeat([]req{{0, "/", 200, 200 * time.Second, 0}}, 5),
			"proactive_slow_requests", "5 of 5 requests in 2m0s took 3m20s or more"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ah := config.NewAutoHeal()
			ah.Triggers = tt.triggers
			healTest(t, webApp(ah), 2, func(t *testing.T, hg *healing) {
				victim, other := hg.fl.instance(0), hg.fl.instance(1)
				for _, r := range tt.reqs {
					elapse(r.gap)
					hg.request(hg.fl.instance(r.inst).id, r.path, r.status, r.took)
				}
				// Long enough for the action, and for the recycle to be
				// done (the fake's take 2s).
				elapse(3 * time.Second)
				synctest.Wait()

				evs := hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle)
				if tt.trigger == "" {
					if len(evs) > 0 || len(hg.fl.recycles()) > 0 {
						t.Fatalf("recycled %v; events:\n%s", hg.fl.recycles(), describe(evs))
					}
					return
				}
				type seen struct{ Type, Instance, Trigger, Value string }
				var got []seen
				for _, e := range evs {
					got = append(got, seen{e.Type, e.Instance, e.Trigger, e.Value})
				}
				want := []seen{
					{telemetry.EventAutoHeal, victim.id, tt.trigger, tt.value},
					{telemetry.EventRecycle, victim.id, "", ""},
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("events (-want +got):\n%s", diff)
				}
				if evs[0].PID != victim.pid {
					t.Errorf("auto_heal event pid %d, want the instance's %d", evs[0].PID, victim.pid)
				}
				if now := hg.fl.instance(0); now.id == victim.id || now.pid == victim.pid {
					t.Errorf("instance %s (pid %d) not replaced", victim.id, victim.pid)
				}
				if now := hg.fl.instance(1); now != other || now.Stopping() {
					t.Errorf("the other instance %s changed", other.id)
				}
			})
		})
	}
}

// The memory trigger on the sampler's private bytes: below the limit
// the samples pass and nothing happens; above it the instance is
// recycled once, the event naming the measured private bytes and the
// instance's pid before the recycle, and the replacement is left alone.
func TestMemoryTriggerRecyclesOnce(t *testing.T) {
	ah := config.NewAutoHeal()
	ah.Triggers.Memory = &config.MemoryTrigger{PrivateBytes: config.Size(150 << 20)}
	healTest(t, webApp(ah), 1, func(t *testing.T, hg *healing) {
		old := hg.fl.instance(0)

		hg.fl.setMemory(100<<20, 120<<20, false)
		elapse(10 * sampleEvery)
		if evs := hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle); len(evs) > 0 {
			t.Fatalf("below the limit:\n%s", describe(evs))
		}

		hg.fl.setMemory(200<<20, 220<<20, false)
		elapse(sampleEvery)
		synctest.Wait()
		evs := hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle)
		if len(evs) != 2 || evs[0].Type != telemetry.EventAutoHeal || evs[1].Type != telemetry.EventRecycle {
			t.Fatalf("want an auto_heal then a recycle event, got:\n%s", describe(evs))
		}
		if ev := evs[0]; ev.Trigger != "memory" || ev.Value != "private bytes 200 MiB > 150 MiB" || ev.PID != old.pid || ev.Instance != old.id {
			t.Errorf("auto_heal event %+v, want trigger memory naming 200 MiB of %s pid %d", ev, old.id, old.pid)
		}

		// The replacement, with little memory, stays.
		elapse(recycleTakes + 10*sampleEvery)
		nw := hg.fl.instance(0)
		if nw.id == old.id || nw.pid == old.pid {
			t.Fatalf("not replaced: %s pid %d", nw.id, nw.pid)
		}
		if evs := hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle); len(evs) != 2 {
			t.Errorf("want one episode, got:\n%s", describe(evs))
		}
	})
}

// The proactive memory rule applies without any auto_heal block: above
// 90% of memory_limit for 30s, not sooner, and a dip below starts the
// 30s over.
func TestProactiveMemoryRule(t *testing.T) {
	app := webApp(nil)
	app.MemoryLimit = config.Size(100 << 20)
	healTest(t, app, 1, func(t *testing.T, hg *healing) {
		old := hg.fl.instance(0)

		hg.fl.setMemory(50<<20, 95<<20, false)
		elapse(20 * time.Second)
		hg.fl.setMemory(50<<20, 80<<20, false) // a dip
		elapse(2 * sampleEvery)
		hg.fl.setMemory(50<<20, 95<<20, false)
		elapse(29 * time.Second)
		if evs := hg.of(telemetry.EventAutoHeal); len(evs) > 0 {
			t.Fatalf("fired before 30s above 90%% since the dip:\n%s", describe(evs))
		}
		elapse(2 * time.Second)
		evs := hg.of(telemetry.EventAutoHeal)
		if len(evs) != 1 || evs[0].Trigger != "proactive_memory" || evs[0].Instance != old.id {
			t.Fatalf("want one proactive_memory auto_heal of %s, got:\n%s", old.id, describe(evs))
		}
		if want := "memory 95 MiB > 90% of memory_limit 100 MiB for 30s"; evs[0].Value != want {
			t.Errorf("value %q, want %q", evs[0].Value, want)
		}
	})
}

// The proactive memory rule's 30s are 30s of samples above 90%: while an
// instance has no sample (its process crashed and was restarted under the
// same id, and the new one is not sampled yet), nothing shows the
// condition holding, so the 30s start over from the next high sample. A
// process's first high sample must not recycle it because its
// predecessor was high half a minute before.
func TestProactiveMemoryRuleStartsOverAfterAGapInSamples(t *testing.T) {
	app := webApp(nil)
	app.MemoryLimit = config.Size(100 << 20)
	healTest(t, app, 1, func(t *testing.T, hg *healing) {
		in := hg.fl.instance(0)

		hg.fl.setMemory(50<<20, 95<<20, false)
		elapse(20 * time.Second)
		// The process dies; its successor, same id, new pid, is unsampled.
		hg.fl.mu.Lock()
		in.sampled, in.pid, in.started = false, in.pid+100, time.Now()
		hg.fl.mu.Unlock()
		elapse(15 * time.Second)
		// Its first samples are high too.
		hg.fl.setMemory(50<<20, 95<<20, false)
		elapse(5 * time.Second)
		synctest.Wait()
		if evs := hg.of(telemetry.EventAutoHeal); len(evs) > 0 {
			t.Fatalf("fired on a process high for 5s, as its predecessor was high 35s before:\n%s", describe(evs))
		}
		elapse(30 * time.Second)
		synctest.Wait()
		evs := hg.of(telemetry.EventAutoHeal)
		if len(evs) != 1 || evs[0].Trigger != "proactive_memory" || evs[0].Instance != in.id {
			t.Fatalf("want one proactive_memory auto_heal of %s once high for 30s, got:\n%s", in.id, describe(evs))
		}
	})
}

// A reload that changes the request triggers and starts no process
// applies them to the running instances, which have counted requests
// already: an app given a requests trigger fires it on the instances
// that served before the reload. One that leaves the triggers as they
// were keeps the counts.
func TestReloadedTriggersApplyToRunningInstances(t *testing.T) {
	many := func(n int) *config.App {
		ah := config.NewAutoHeal()
		ah.Triggers = config.Triggers{Requests: &config.RequestsTrigger{Count: n, Interval: config.Duration(time.Minute)}}
		return webApp(ah)
	}
	healTest(t, webApp(nil), 1, func(t *testing.T, hg *healing) {
		in := hg.fl.instance(0)
		hg.request(in.id, "/", 200, time.Millisecond)
		hg.fl.reload(many(3))
		hg.request(in.id, "/", 200, time.Millisecond)
		hg.fl.reload(many(3)) // the same triggers, in a new config
		for range 2 {
			elapse(100 * time.Millisecond)
			hg.request(in.id, "/", 200, time.Millisecond)
		}
		elapse(3 * time.Second)
		synctest.Wait()
		if diff := cmp.Diff([]string{in.id + " requests: 3 requests in 1m0s"}, hg.fired()); diff != "" {
			t.Errorf("auto_heal events (-want +got):\n%s", diff)
		}
	})
}

// A reload that changes one trigger, or a setting of the block that is
// no trigger, starts that trigger's count over and no other: the
// requests an instance served before it count towards the triggers the
// reload left as they were.
func TestReloadKeepsTheCountsOfTriggersItLeaves(t *testing.T) {
	withStatus := func(count int, memory *config.MemoryTrigger) *config.App {
		ah := config.NewAutoHeal()
		ah.Triggers = config.Triggers{
			Memory:      memory,
			Requests:    &config.RequestsTrigger{Count: 3, Interval: config.Duration(time.Minute)},
			StatusCodes: []config.StatusTrigger{{Status: config.StatusRange{Min: 500, Max: 599}, Count: count, Interval: config.Duration(time.Minute)}},
		}
		return webApp(ah)
	}
	tests := []struct {
		name string
		next *config.App
	}{
		{"another trigger changed", withStatus(10, nil)},
		{"a memory trigger added", withStatus(5, &config.MemoryTrigger{PrivateBytes: 1 << 40})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			healTest(t, withStatus(5, nil), 1, func(t *testing.T, hg *healing) {
				in := hg.fl.instance(0)
				for range 2 {
					hg.request(in.id, "/", 200, time.Millisecond)
					elapse(100 * time.Millisecond)
				}
				hg.fl.reload(tt.next)
				hg.request(in.id, "/", 200, time.Millisecond)
				elapse(3 * time.Second)
				synctest.Wait()
				if diff := cmp.Diff([]string{in.id + " requests: 3 requests in 1m0s"}, hg.fired()); diff != "" {
					t.Errorf("auto_heal events (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// Observe is on the request path: past an instance's first request it
// finds the app's auto_heal block without looking the app up in the
// supervisor, whose lookup takes a lock every request of every app
// would then share.
func TestObserveLooksTheAppUpOncePerInstance(t *testing.T) {
	ah := config.NewAutoHeal()
	ah.Triggers = config.Triggers{Requests: &config.RequestsTrigger{Count: 1000, Interval: config.Duration(time.Minute)}}
	healTest(t, webApp(ah), 2, func(t *testing.T, hg *healing) {
		before := hg.fl.lookups.Load()
		for i := range 100 {
			hg.request(hg.fl.instance(i%2).id, "/", 200, time.Millisecond)
		}
		if got := hg.fl.lookups.Load() - before; got > 2 {
			t.Errorf("100 requests to 2 instances looked the app up %d times, want at most 2", got)
		}
	})
}
