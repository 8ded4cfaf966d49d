package diagnose

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// crash: instances that died while serving, with the requests that died
// with them and the last thing the process printed. An exit some request
// failed with is a crash however soon after the start it came: the app
// did not die on its own, a request killed it (restart_loop is for the
// app that does).
func crash(ev *Evidence, found []Finding) []Finding {
	byInst := map[string][]telemetry.Event{}
	var order []string
	for _, e := range eventsOf(ev, telemetry.EventExit) {
		if strings.Contains(e.Detail, "before it became ready") || startFailed(e) || ev.endedByDump(e) {
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
		app := exits[0].App
		if covered(found, app, id) && !coveredOnlyBy(found, app, id, "restart_loop") {
			continue
		}
		if loopedBefore(found, app, id) {
			// The loop, current or outlived, explains the exits of their
			// own; the ones requests failed with are still crashes.
			var byReq []telemetry.Event
			for _, e := range exits {
				if ev.requestCaused(e) {
					byReq = append(byReq, e)
				}
			}
			if exits = byReq; len(exits) == 0 {
				continue
			}
		}
		last := exits[len(exits)-1]
		failed := make([][]*Access, len(exits))
		var affected []*Access
		for i, e := range exits {
			failed[i] = ev.failedWith(e)
			affected = append(affected, failed[i]...)
		}
		culprit := suspect(failed)
		var evd []string
		from := max(0, len(exits)-crashExitsShown)
		if from > 0 {
			evd = append(evd, fmt.Sprintf("%d earlier exits from %s on", from, clock(exits[0].Time)))
		}
		for i := from; i < len(exits); i++ {
			e := exits[i]
			evd = append(evd, fmt.Sprintf("%s pid %d %s", clock(e.Time), e.PID, e.Detail))
			for j, a := range newestFirst(failed[i]) {
				if j == crashRequestsShown {
					evd = append(evd, fmt.Sprintf("… and %d more requests", len(failed[i])-j))
					break
				}
				evd = append(evd, "failed with it: "+describeRequest(a))
			}
		}
		if lines := outputLines(last.Output, 8); len(lines) > 0 {
			evd = append(evd, fmt.Sprintf("last output of pid %d before it exited:", last.PID))
			evd = append(evd, lines...)
		} else {
			evd = append(evd, fmt.Sprintf("pid %d printed nothing before it exited", last.PID))
		}
		sev := Warning
		if len(affected) > 0 {
			sev = Critical
		}
		title := fmt.Sprintf("%s crashed %s (last: %s)", id, plural(len(exits), "time", "times"), exitWhat(last))
		if culprit != nil {
			title = fmt.Sprintf("%s crashed %s while serving requests (last: %s, serving %s %s, request id %s)",
				id, plural(len(exits), "time", "times"), exitWhat(last), culprit.Method, culprit.Path, culprit.RequestID)
		}
		f := Finding{
			ID: "crash", Severity: sev, App: app, Instance: id,
			Title:            title,
			Evidence:         evd,
			Fix:              crashFix(last, culprit, ev.hints(app)),
			RequestsAffected: len(affected), SampleRequestIDs: sampleIDs(culpritFirst(affected, culprit)),
			FirstSeen: exits[0].Time, LastSeen: last.Time,
		}
		out = append(out, f)
	}
	return out
}

const (
	// crashExitsShown is how many of an instance's exits the evidence lists.
	crashExitsShown = 5
	// crashRequestsShown is how many of the requests that failed with one
	// exit the evidence lists.
	crashRequestsShown = 3
)

// coveredOnlyBy reports whether every earlier current finding that names
// instance is of kind id.
func coveredOnlyBy(found []Finding, app, instance, id string) bool {
	for _, f := range found {
		if !f.Past && f.App == app && (f.Instance == instance || f.Instance == "") && f.ID != id {
			return false
		}
	}
	return true
}

// loopedBefore reports whether an earlier finding, current or past, is
// instance's restart loop.
func loopedBefore(found []Finding, app, instance string) bool {
	return slices.ContainsFunc(found, func(f Finding) bool {
		return f.ID == "restart_loop" && f.App == app && f.Instance == instance
	})
}

// failedWith are the requests that failed with exit e: their access entry
// names it ("instance web-1 (pid 4242) exited with code 3", the gateway's
// attempt error).
func (ev *Evidence) failedWith(e telemetry.Event) []*Access {
	if e.PID == 0 {
		return nil
	}
	pid := "(pid " + strconv.Itoa(e.PID) + ")"
	return accessWhere(ev, func(a *Access) bool {
		if a.App != "" && e.App != "" && a.App != e.App {
			return false
		}
		if a.Instance != e.Instance && !strings.Contains(a.Detail, "instance "+e.Instance+" ") {
			return false
		}
		return strings.Contains(a.Detail, pid)
	})
}

// endedByDump reports whether exit e ended its process's dump: a dump of
// that process began before the exit and was taken as it exited, and
// says it ended the process. A process that exits under such a dump was
// ended by it, by design (a Go program's stacks with allow_exit:
// SIGQUIT); the dump's events record it, and it is no crash. One that
// exits under a dump that fails, long after a dump, or right after one
// that left it running (a core, a heap snapshot), is still a crash.
func (ev *Evidence) endedByDump(e telemetry.Event) bool {
	if e.PID == 0 {
		return false
	}
	// The last dump of the process begun before the exit, and its
	// outcome: written once the process has exited, which may be before
	// the exit's own event (see dumpExitLag).
	var begun, ended bool
	var outcome string
	for _, d := range eventsOf(ev, telemetry.EventDumpStarted, telemetry.EventDump, telemetry.EventDumpFailed) {
		switch {
		case d.Instance != e.Instance || d.PID != e.PID:
		case d.Type == telemetry.EventDumpStarted:
			if !d.Time.After(e.Time) {
				begun, outcome, ended = true, "", false
			}
		case begun && outcome == "":
			outcome, ended = d.Type, strings.Contains(d.Detail, telemetry.DumpEndedProcess)
			if d.Time.Before(e.Time.Add(-dumpExitLag)) {
				begun = false // the process lived on after that dump
			}
		}
	}
	return begun && outcome == telemetry.EventDump && ended
}

// dumpExitLag bounds how much earlier than an exit's event the outcome
// of the dump that ended the process may be: the exit's event first
// waits for the requests that failed with it (exitSettle, 100 ms), later
// on a busy machine.
const dumpExitLag = 5 * time.Second

// requestCaused reports whether some request failed with exit e: the
// process died under a request, not on its own. Requests it cut off that
// were retried elsewhere do not count: they did not fail, and an app that
// dies on its own under GET traffic cuts some off too.
func (ev *Evidence) requestCaused(e telemetry.Event) bool {
	return e.Failed > 0 || len(ev.failedWith(e)) > 0
}

// suspect is the request most likely to have killed the process: of the
// method and path that failed with the most exits, the one that arrived
// last before the last of them. Requests in flight by chance fail with
// one exit; the one that kills the process fails with each.
func suspect(failed [][]*Access) *Access {
	exitsOf := map[string]int{}
	for _, as := range failed {
		seen := map[string]bool{}
		for _, a := range as {
			k := a.Method + " " + a.Path
			if !seen[k] {
				seen[k] = true
				exitsOf[k]++
			}
		}
	}
	var best *Access
	for i := len(failed) - 1; i >= 0 && best == nil; i-- {
		for _, a := range failed[i] {
			if best == nil {
				best = a
				continue
			}
			ka, kb := exitsOf[a.Method+" "+a.Path], exitsOf[best.Method+" "+best.Path]
			if ka > kb || ka == kb && a.Time.After(best.Time) {
				best = a
			}
		}
	}
	return best
}

// newestFirst orders requests by arrival, the latest first.
func newestFirst(as []*Access) []*Access {
	out := append([]*Access(nil), as...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.After(out[j].Time) })
	return out
}

// culpritFirst puts c (may be nil) first among as.
func culpritFirst(as []*Access, c *Access) []*Access {
	if c == nil {
		return as
	}
	out := []*Access{c}
	for _, a := range as {
		if a != c {
			out = append(out, a)
		}
	}
	return out
}

func describeRequest(a *Access) string {
	s := fmt.Sprintf("%s %s (request id %s, arrived %s)", a.Method, a.Path, a.RequestID, clock(a.Time))
	if a.Status != 0 {
		s += fmt.Sprintf(", answered %d", a.Status)
		if a.Cause != "" {
			s += " " + a.Cause
		}
	}
	return s
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

func crashFix(e telemetry.Event, culprit *Access, h hints) string {
	if fix := outOfMemoryFix(e.Output); fix != "" {
		return fix
	}
	switch {
	case e.Signal == "SIGKILL":
		return "something killed the process with SIGKILL: often the kernel's OOM killer (check `dmesg` and the instance's memory), or an operator; requests it was serving were lost — gatehouse retried the idempotent ones"
	case sentFromOutside[e.Signal]:
		return "something outside gatehouse ended the process with " + e.Signal + " (an operator, a script or cron job, an orchestrator or deploy tool; " +
			"gatehouse's own stops and restarts record no exit): find what sent it and stop it from targeting the app's processes; " +
			"requests it was serving were lost — gatehouse retried those it could"
	case faultSignals[e.Signal]:
		return "the process crashed in native code (" + e.Signal + "): check native modules and the output above"
	}
	if culprit != nil {
		return fmt.Sprintf("the app exits while serving %s %s: reproduce it with that request and fix the error in the output above; %s",
			culprit.Method, culprit.Path, h.crash)
	}
	return "the app exited on its own: fix the error in its output above; " + h.crash
}

// outOfMemoryFix is the fix for a process whose last output says its
// runtime ran out of memory ("" when it does not): such a process ends
// as its runtime chooses (Node and the JVM abort, SIGABRT, which is no
// fault of native code; Go exits 2), and the fix is the runtime's limit
// or what holds the memory, not the signal's.
func outOfMemoryFix(output []string) string {
	// Anywhere in the last lines kept (exitOutputLines): the runtime's
	// own report (Node's native stack, the JVM's) may follow the message.
	for _, l := range output {
		switch {
		case strings.Contains(l, "JavaScript heap out of memory"), strings.Contains(l, "Reached heap limit"):
			return "the process ran out of JavaScript heap (Node's own heap limit, which may be well below the machine's memory): " +
				"raise it with NODE_OPTIONS=--max-old-space-size=MiB in the app's env, within the instance's memory, " +
				"or find what holds the memory (gatehouse dump INSTANCE --kind heap, while it grows)"
		case strings.Contains(l, "java.lang.OutOfMemoryError"):
			return "the JVM ran out of memory (" + strings.TrimSpace(l[strings.Index(l, "java.lang.OutOfMemoryError"):]) + "): " +
				"raise its limit (-Xmx, or -XX:MaxRAMPercentage) within the instance's memory, or find what holds the memory (a heap dump: jcmd PID GC.heap_dump)"
		case strings.Contains(l, "fatal error: runtime: out of memory"):
			return "the Go runtime could not get more memory from the system: check the instance's memory limit and what the app holds " +
				"(a heap profile through net/http/pprof); GOMEMLIMIT makes the collector work harder before the limit"
		case strings.HasPrefix(strings.TrimSpace(l), "MemoryError"):
			return "the Python process ran out of memory (MemoryError): check the instance's memory limit and what the app holds " +
				"(tracemalloc), and read large inputs in pieces"
		}
	}
	return ""
}

// sentFromOutside are the signals a process dies of only when something
// sends them (the gateway excuses the requests such an exit cut off
// alike); SIGKILL, also one, has a fix of its own. faultSignals are those
// of a fault in the process's own native code.
var (
	sentFromOutside = map[string]bool{"SIGTERM": true, "SIGINT": true, "SIGHUP": true, "SIGQUIT": true}
	faultSignals    = map[string]bool{"SIGSEGV": true, "SIGABRT": true, "SIGBUS": true, "SIGILL": true, "SIGFPE": true, "SIGSYS": true, "SIGTRAP": true}
)

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
			if ev.endedByDump(e) {
				continue // the dump's, by design
			}
			if ev.requestCaused(e) {
				continue // crash's: a request killed it, it did not die on its own
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
		f := Finding{
			ID: "restart_loop", Severity: sev, App: a.app, Instance: id,
			Title:            fmt.Sprintf("%s keeps dying soon after it starts (%s)", id, plural(len(a.exits), "exit", "exits")),
			Evidence:         evd,
			Fix:              "the app exits during or right after startup: read its output above (a missing env var, a config file, a port already in use, a failing database connection); gatehouse restarts it with back-off up to one minute",
			RequestsAffected: len(affected), SampleRequestIDs: sampleIDs(affected),
			FirstSeen: first.Time, LastSeen: last.Time,
		}
		if up, ok := ev.outlived(id, a.exits); ok {
			f.Past = true
			f.Title = fmt.Sprintf("%s died soon after it started (%s), and has run since %s", id, plural(len(a.exits), "exit", "exits"), clock(up))
			f.Evidence = prepend(f.Evidence, fmt.Sprintf("past: %s has run since %s, longer than any run of the loop, and is ready", id, clock(up)))
		}
		out = append(out, f)
	}
	return out
}

// outlived reports whether instance id, which died at exits, runs now a
// process started after the last of them that is ready and has run
// longer than the loop let any run (the longest time between two exits,
// a restartLoopWindow at least): the loop ended. It returns when that
// process started.
func (ev *Evidence) outlived(id string, exits []telemetry.Event) (time.Time, bool) {
	in := snapInstance(ev, id)
	last := exits[len(exits)-1].Time
	if in == nil || in.State != "ready" || in.StartedAt.Before(last) {
		return time.Time{}, false
	}
	longest := restartLoopWindow
	for i := 1; i < len(exits); i++ {
		longest = max(longest, exits[i].Time.Sub(exits[i-1].Time))
	}
	return in.StartedAt, ev.State.At.Sub(in.StartedAt) > longest
}

const (
	restartLoopMin    = 3
	restartLoopWindow = time.Minute
)
