package autoheal

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// twoFiveHundreds is a trigger of two 500s within a minute.
func twoFiveHundreds() []config.StatusTrigger {
	return []config.StatusTrigger{{Status: config.StatusRange{Min: 500, Max: 500}, Count: 2, Interval: config.Duration(time.Minute)}}
}

// fireStatus sends instance in the two 500s of twoFiveHundreds.
func fireStatus(hg *healing, in *fakeInstance) {
	hg.request(in.id, "/status", 500, time.Millisecond)
	hg.request(in.id, "/status", 500, time.Millisecond)
}

// Action log_event only logs: an auto_heal event naming the action, no
// recycle, same instance; the counts start over, so the next episode
// logs again.
func TestLogEventActionOnlyLogs(t *testing.T) {
	ah := config.NewAutoHeal()
	ah.Action = config.ActionLogEvent
	ah.Triggers.StatusCodes = twoFiveHundreds()
	healTest(t, webApp(ah), 1, func(t *testing.T, hg *healing) {
		old := hg.fl.instance(0)
		fireStatus(hg, old)
		elapse(time.Second)
		evs := hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle)
		if len(evs) != 1 || evs[0].Type != telemetry.EventAutoHeal || evs[0].Trigger != "status_codes" || !strings.Contains(evs[0].Detail, "log_event") {
			t.Fatalf("want one status_codes auto_heal event naming log_event, got:\n%s", describe(evs))
		}
		if now := hg.fl.instance(0); now != old || now.Stopping() || len(hg.fl.recycles()) > 0 {
			t.Fatalf("instance changed: %s, recycles %v", now.id, hg.fl.recycles())
		}

		hg.request(old.id, "/status", 500, time.Millisecond)
		elapse(time.Second)
		if n := len(hg.of(telemetry.EventAutoHeal)); n != 1 {
			t.Errorf("one 500 after the episode logged again (%d events)", n)
		}
		hg.request(old.id, "/status", 500, time.Millisecond)
		elapse(time.Second)
		if n := len(hg.of(telemetry.EventAutoHeal)); n != 2 {
			t.Errorf("a second episode logged %d events in all, want 2", n)
		}
	})
}

// Action custom runs the command (a real sh) with the instance's
// placeholders filled and records its output in an auto_heal event of
// the trigger; the instance is not recycled.
func TestCustomActionRunsCommand(t *testing.T) {
	testutil.SkipInShort(t)
	ah := config.NewAutoHeal()
	ah.Action = config.ActionCustom
	ah.Custom = config.Command{"sh", "-c", "echo healing {instance} pid={pid}"}
	ah.Triggers.StatusCodes = twoFiveHundreds()
	healTest(t, webApp(ah), 1, func(t *testing.T, hg *healing) {
		old := hg.fl.instance(0)
		fireStatus(hg, old)
		elapse(time.Second)
		// The command runs on the real clock: wait for its goroutine.
		hg.h.wg.Wait()
		want := fmt.Sprintf("healing %s pid=%d", old.id, old.pid)
		var ev *telemetry.Event
		for _, e := range hg.of(telemetry.EventAutoHeal) {
			if strings.Contains(e.Detail, "output:") {
				ev = &e
			}
		}
		if ev == nil || !strings.Contains(ev.Detail, "output: "+want) || !strings.Contains(ev.Detail, ": ok;") {
			t.Fatalf("want the command ok with output %q; events:\n%s", want, describe(hg.of(telemetry.EventAutoHeal)))
		}
		if ev.Trigger != "status_codes" {
			t.Errorf("custom action event trigger = %q, want status_codes", ev.Trigger)
		}
		elapse(time.Second)
		if evs := hg.of(telemetry.EventRecycle); len(evs) > 0 || hg.fl.instance(0) != old {
			t.Fatalf("action custom recycled:\n%s", describe(evs))
		}
	})
}

// With min_process_execution_time 1h no trigger acts on the young
// instance: no auto_heal event, no recycle, same pid. Once it is an hour
// old the memory trigger, still firing, does act.
func TestMinProcessExecutionTimeProtectsYoungInstance(t *testing.T) {
	ah := config.NewAutoHeal()
	ah.MinProcessExecutionTime = config.Duration(time.Hour)
	ah.Triggers.StatusCodes = []config.StatusTrigger{{Status: config.StatusRange{Min: 500, Max: 599}, Count: 2, Interval: config.Duration(time.Minute)}}
	// Memory too: it fires on every sample, whatever the traffic.
	ah.Triggers.Memory = &config.MemoryTrigger{PrivateBytes: config.Size(1 << 20)}
	healTest(t, webApp(ah), 1, func(t *testing.T, hg *healing) {
		old := hg.fl.instance(0)
		hg.fl.setMemory(10<<20, 10<<20, false)
		for range 6 {
			hg.request(old.id, "/status", 500, time.Millisecond)
		}
		elapse(59 * time.Minute)
		if evs := hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle); len(evs) > 0 {
			t.Fatalf("acted on an instance younger than min_process_execution_time:\n%s", describe(evs))
		}
		if now := hg.fl.instance(0); now != old || now.Stopping() {
			t.Fatalf("instance %s changed to %s", old.id, now.id)
		}
		elapse(time.Minute + sampleEvery)
		if evs := hg.of(telemetry.EventAutoHeal); len(evs) != 1 || evs[0].Trigger != "memory" {
			t.Errorf("an hour old, want the memory trigger to act:\n%s", describe(evs))
		}
	})
}

// With max_recycles {count: 2, per: 1h} and a trigger that keeps firing,
// two recycles happen, the third does not, and one auto_heal event
// (trigger max_recycles) says auto-heal paused; the instance is left
// alone while paused, and auto-heal resumes by itself once the oldest
// recycle is an hour old.
func TestMaxRecyclesPausesAutoHeal(t *testing.T) {
	ah := config.NewAutoHeal()
	ah.MaxRecycles = &config.RateLimit{Count: 2, Per: config.Duration(time.Hour)}
	// Fires on every sample of every instance, the replacements included.
	ah.Triggers.Memory = &config.MemoryTrigger{PrivateBytes: config.Size(1 << 20)}
	pauses := func(hg *healing) []telemetry.Event {
		var out []telemetry.Event
		for _, e := range hg.of(telemetry.EventAutoHeal) {
			if e.Trigger == "max_recycles" {
				out = append(out, e)
			}
		}
		return out
	}
	healTest(t, webApp(ah), 1, func(t *testing.T, hg *healing) {
		hg.fl.setMemory(10<<20, 10<<20, true)
		elapse(2*recycleTakes + 10*sampleEvery)
		if got := len(hg.fl.recycles()); got != 2 {
			t.Fatalf("%d recycles, want 2:\n%s", got, describe(hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle)))
		}
		if p := pauses(hg); len(p) != 1 || !strings.Contains(p[0].Detail, "paused") {
			t.Fatalf("want one max_recycles event saying auto-heal paused, got:\n%s", describe(p))
		}

		// Paused: the trigger keeps firing, nothing more is recycled and
		// the pause is announced once.
		cur := hg.fl.instance(0)
		elapse(50 * time.Minute)
		if got := len(hg.fl.recycles()); got != 2 {
			t.Fatalf("%d recycles while paused:\n%s", got, describe(hg.of(telemetry.EventRecycle, telemetry.EventAutoHeal)))
		}
		if now := hg.fl.instance(0); now != cur {
			t.Fatalf("instance replaced while auto-heal is paused: %s → %s", cur.id, now.id)
		}
		if n := len(pauses(hg)); n != 1 {
			t.Errorf("%d max_recycles events, want the pause announced once", n)
		}

		elapse(10*time.Minute + sampleEvery)
		if got := len(hg.fl.recycles()); got < 3 {
			t.Errorf("auto-heal did not resume an hour after the first recycle: %d recycles", got)
		}
	})
}

// An instance already on its way out (a recycle, reload or scale got
// there first) is not acted on: acting again would count against
// max_recycles and report a failed recycle.
func TestStoppingInstanceIsLeftAlone(t *testing.T) {
	ah := config.NewAutoHeal()
	ah.Triggers.StatusCodes = twoFiveHundreds()
	healTest(t, webApp(ah), 1, func(t *testing.T, hg *healing) {
		in := hg.fl.instance(0)
		hg.fl.setStopping(in)
		fireStatus(hg, in)
		elapse(time.Second)
		if evs := hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle); len(evs) > 0 || len(hg.fl.recycles()) > 0 {
			t.Fatalf("acted on a stopping instance:\n%s", describe(evs))
		}
	})
}

// A recycle that finds its instance gone (a reload replaced it while the
// recycle waited behind it for the app) did not fail and did not happen:
// no "recycle failed" event, and it does not count against max_recycles,
// so the replacement's own trigger still recycles it.
func TestRecycleOfAnInstanceReplacedMeanwhile(t *testing.T) {
	ah := config.NewAutoHeal()
	ah.MaxRecycles = &config.RateLimit{Count: 1, Per: config.Duration(time.Hour)}
	ah.Triggers.StatusCodes = twoFiveHundreds()
	healTest(t, webApp(ah), 1, func(t *testing.T, hg *healing) {
		old := hg.fl.instance(0)
		hg.fl.setBeforeRecycle(func() { hg.fl.replace(0) })
		fireStatus(hg, old)
		elapse(time.Second)
		for _, e := range hg.of(telemetry.EventAutoHeal) {
			if strings.Contains(e.Detail, "failed") {
				t.Errorf("a recycle of an instance replaced meanwhile reported as failed: %s", e.Detail)
			}
		}
		if got := hg.fl.recycles(); len(got) != 0 {
			t.Fatalf("recycled %v", got)
		}

		hg.fl.setBeforeRecycle(nil)
		fresh := hg.fl.instance(0)
		fireStatus(hg, fresh)
		elapse(recycleTakes + time.Second)
		if got := hg.fl.recycles(); len(got) != 1 || got[0] != fresh.id {
			t.Errorf("recycles %v after the replacement's trigger, want [%s]:\n%s", got, fresh.id, describe(hg.of(telemetry.EventAutoHeal, telemetry.EventRecycle)))
		}
	})
}
