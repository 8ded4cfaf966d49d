package diagnose

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// crash: instances that died while serving, with the requests that died
// with them and the last thing the process printed.
func crash(ev *Evidence, found []Finding) []Finding {
	byInst := map[string][]telemetry.Event{}
	var order []string
	for _, e := range eventsOf(ev, telemetry.EventExit) {
		if strings.Contains(e.Detail, "before it became ready") || startFailed(e) {
			continue
		}
		if byInst[e.Instance] == nil {
			order = append(order, e.Instance)
		}
		byInst[e.Instance] = append(byInst[e.Instance], e)
	}
	var out []Finding
	for _, id := range order {
		exits := byInst[id]
		last := exits[len(exits)-1]
		if covered(found, last.App, id) {
			continue
		}
		pids := map[string]bool{}
		var evd []string
		for _, e := range exits {
			pids["(pid "+strconv.Itoa(e.PID)+")"] = true
			evd = append(evd, fmt.Sprintf("%s pid %d %s", clock(e.Time), e.PID, e.Detail))
		}
		affected := accessWhere(ev, func(a *Access) bool {
			if a.Instance != id && !strings.Contains(a.Detail, "instance "+id+" ") {
				return false
			}
			for p := range pids {
				if strings.Contains(a.Detail, p) {
					return true
				}
			}
			return false
		})
		evd = append(evd, outputLines(last.Output, 8)...)
		sev := Warning
		if len(affected) > 0 {
			sev = Critical
		}
		f := Finding{
			ID: "crash", Severity: sev, App: last.App, Instance: id,
			Title:            fmt.Sprintf("%s crashed %s (last: %s)", id, plural(len(exits), "time", "times"), exitWhat(last)),
			Evidence:         evd,
			Fix:              crashFix(last),
			RequestsAffected: len(affected), SampleRequestIDs: sampleIDs(affected),
			FirstSeen: exits[0].Time, LastSeen: last.Time,
		}
		out = append(out, f)
	}
	return out
}

func exitWhat(e telemetry.Event) string {
	if e.Signal != "" {
		return "killed by " + e.Signal
	}
	if e.ExitCode != nil {
		return "exit code " + strconv.Itoa(*e.ExitCode)
	}
	return "exited"
}

func crashFix(e telemetry.Event) string {
	switch e.Signal {
	case "SIGKILL":
		return "something killed the process with SIGKILL: often the kernel's OOM killer (check `dmesg` and the instance's memory), or an operator; requests it was serving were lost — gatehouse retried the idempotent ones"
	case "SIGSEGV", "SIGABRT", "SIGBUS":
		return "the process crashed in native code (" + e.Signal + "): check native modules and the output above"
	}
	return "the app exited on its own: fix the error in its output above; in Node handle 'uncaughtException'/'unhandledRejection' by logging and shutting down gracefully, so that in-flight requests finish"
}

// restartLoop: an instance that keeps dying soon after it starts.
func restartLoop(ev *Evidence, found []Finding) []Finding {
	type agg struct {
		app      string
		exits    []telemetry.Event
		restarts []telemetry.Event
	}
	byInst := map[string]*agg{}
	var order []string
	for _, e := range eventsOf(ev, telemetry.EventExit, telemetry.EventRestart) {
		a := byInst[e.Instance]
		if a == nil {
			a = &agg{app: e.App}
			byInst[e.Instance] = a
			order = append(order, e.Instance)
		}
		if e.Type == telemetry.EventExit {
			if startFailed(e) {
				continue // start_failure's: the app never ran
			}
			a.exits = append(a.exits, e)
		} else if !strings.Contains(e.Detail, "on request") {
			a.restarts = append(a.restarts, e)
		}
	}
	var out []Finding
	for _, id := range order {
		a := byInst[id]
		if len(a.exits) < restartLoopMin || len(a.restarts) == 0 || covered(found, a.app, id) {
			continue
		}
		first, last := a.exits[0], a.exits[len(a.exits)-1]
		if last.Time.Sub(first.Time) > restartLoopWindow*time.Duration(len(a.exits)) {
			continue // exits spread out over a long time are crashes, not a loop
		}
		evd := []string{
			fmt.Sprintf("%s between %s and %s", plural(len(a.exits), "exit", "exits"), clock(first.Time), clock(last.Time)),
			"last exit: " + last.Detail,
			"back-off now: " + a.restarts[len(a.restarts)-1].Detail,
		}
		evd = append(evd, outputLines(last.Output, 8)...)
		affected := accessWhere(ev, func(x *Access) bool { return x.App == a.app && x.Cause == "no_ready_instance" })
		sev := Warning
		if ev.readyCount(a.app) == 0 {
			sev = Critical
		}
		out = append(out, Finding{
			ID: "restart_loop", Severity: sev, App: a.app, Instance: id,
			Title:            fmt.Sprintf("%s keeps dying soon after it starts (%s)", id, plural(len(a.exits), "exit", "exits")),
			Evidence:         evd,
			Fix:              "the app exits during or right after startup: read its output above (a missing env var, a config file, a port already in use, a failing database connection); gatehouse restarts it with back-off up to one minute",
			RequestsAffected: len(affected), SampleRequestIDs: sampleIDs(affected),
			FirstSeen: first.Time, LastSeen: last.Time,
		})
	}
	return out
}

const (
	restartLoopMin    = 3
	restartLoopWindow = time.Minute
)
