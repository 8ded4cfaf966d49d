package diagnose

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// portMismatch: the process listens, but not on the PORT it was given,
// the articles' WEBSITES_PORT misconfiguration.
func portMismatch(ev *Evidence, _ []Finding) []Finding {
	var out []Finding
	for _, ai := range instances(ev) {
		in := ai.in
		if in.Stats == nil || len(in.Stats.Listening) == 0 || in.Port == 0 || in.Stats.ListensOn(in.Port) {
			continue
		}
		affected := accessWhere(ev, func(a *Access) bool {
			return a.App == ai.app.Name && (a.Cause == "no_ready_instance" || (a.Instance == in.ID && a.Cause == "connect_refused"))
		})
		what, fix := PortMismatchText(in.Stats.Listening, in.Port, ev.runtimeOf(ai.app.Name))
		f := Finding{
			ID: "port_mismatch", Severity: "critical", App: ai.app.Name, Instance: in.ID,
			Title: in.ID + " " + what,
			Evidence: []string{
				fmt.Sprintf("process %d listens on %s (from /proc)", in.PID, strings.Join(in.Stats.Listening, ", ")),
				fmt.Sprintf("gatehouse gave it PORT=%d and WEBSITES_PORT=%d, and probes that port: %s", in.Port, in.Port, in.Health),
				fmt.Sprintf("%s is %s", in.ID, in.State),
			},
			Fix:              fix,
			RequestsAffected: len(affected), SampleRequestIDs: sampleIDs(affected),
		}
		f.FirstSeen, f.LastSeen = span(affected)
		out = append(out, f)
	}
	return out
}

// PortMismatchText words a port mismatch: what the process does ("listens
// on 127.0.0.1:8000, but was given PORT=37781", to follow its instance's
// name) and the fix for its runtime (see DetectRuntime). The
// port_mismatch finding says it so, and so does the supervisor, which
// sees a mismatch as an instance starts.
func PortMismatchText(listening []string, port int, runtime string) (what, fix string) {
	what = fmt.Sprintf("listens on %s, but was given PORT=%d", strings.Join(listening, ", "), port)
	fix = fmt.Sprintf("bind to the PORT environment variable (%s) instead of a fixed port: gatehouse probes and sends requests to the PORT it gives", hintsOf(runtime).port)
	return what, fix
}

// probeRejected: the health probe gets an answer, but one that says "not
// for you": 401, 403, a redirect to a login page, or 404.
func probeRejected(ev *Evidence, found []Finding) []Finding {
	var out []Finding
	for _, ai := range instances(ev) {
		in := ai.in
		code := statusCode(in.Health)
		if code < 300 || code >= 500 || covered(found, ai.app.Name, in.ID) {
			continue
		}
		sev := Warning
		if ev.readyCount(ai.app.Name) == 0 {
			sev = Critical
		}
		affected := accessWhere(ev, func(a *Access) bool { return a.App == ai.app.Name && a.Cause == "no_ready_instance" })
		out = append(out, Finding{
			ID: "probe_rejected", Severity: sev, App: ai.app.Name, Instance: in.ID,
			Title:            fmt.Sprintf("the health probe of %s is rejected: %s", in.ID, strings.TrimPrefix(in.Health, "starting: ")),
			Evidence:         []string{fmt.Sprintf("probe GET %s → %s", ai.app.HealthPath, in.Health), fmt.Sprintf("%s is %s and gets no traffic", in.ID, in.State)},
			Fix:              probeFix(code, ai.app.HealthPath),
			RequestsAffected: len(affected), SampleRequestIDs: sampleIDs(affected),
		})
	}
	return out
}

func probeFix(code int, path string) string {
	switch {
	case code == 401 || code == 403:
		return fmt.Sprintf("the probe path %s needs login: expose a public /healthz that answers 200 without auth, and set health.path to it", path)
	case code == 404:
		return fmt.Sprintf("the app has no route %s: add one that answers 200, or set health.path to a path that exists", path)
	case code >= 300 && code < 400:
		return fmt.Sprintf("%s redirects (often to a login page or to https): probe a path that answers 200 directly", path)
	}
	return fmt.Sprintf("make %s answer a status within health.status (default 200-399)", path)
}

// commandNotExecutable: an instance whose command's program does not
// exist or may not be executed. gatehouse does not restart it (it would
// fail the same way for ever) and answers the app's requests 503 at once;
// its exit event says which path and why (ENOENT, EACCES), as package
// process words it: "could not start: executable …".
func commandNotExecutable(ev *Evidence, found []Finding) []Finding {
	return cannotRun(ev, found, notExecutablePrefix, "command_not_executable", "cannot run its command",
		"fix command: in the config (or the words after gatehouse run --): the program's path, or install it, or chmod +x it; then gatehouse restart or reload")
}

// appDirUnusable: an instance whose dir does not exist, is not a
// directory or may not be entered; gatehouse does not restart it either.
// Its exit event says "could not start: app directory …".
func appDirUnusable(ev *Evidence, found []Finding) []Finding {
	return cannotRun(ev, found, dirUnusablePrefix, "app_dir_unusable", "cannot start in its directory",
		"fix dir: in the config (a path relative to the config file's directory), or create the directory or let gatehouse's user enter it; then gatehouse restart or reload")
}

// cannotRun finds the instances whose last failed start's exit event
// begins with prefix, and not ready since: start failures that are not
// retried.
func cannotRun(ev *Evidence, found []Finding, prefix, id, title, fix string) []Finding {
	last := map[string]telemetry.Event{}
	var order []string
	for _, e := range ev.Events {
		if e.Type == telemetry.EventReady {
			delete(last, e.Instance) // fixed and restarted since
			continue
		}
		if e.Type != telemetry.EventExit || !strings.HasPrefix(e.Detail, prefix) {
			continue
		}
		if !slices.Contains(order, e.Instance) {
			order = append(order, e.Instance)
		}
		last[e.Instance] = e
	}
	var out []Finding
	for _, inst := range order {
		e, ok := last[inst]
		if !ok || covered(found, e.App, inst) {
			continue
		}
		what, _, _ := strings.Cut(strings.TrimPrefix(e.Detail, "could not start: "), "; ")
		affected := accessWhere(ev, func(x *Access) bool { return x.App == e.App && x.Cause == "no_ready_instance" })
		f := Finding{
			ID: id, Severity: Critical, App: e.App, Instance: inst,
			Title: fmt.Sprintf("%s %s: %s", inst, title, what),
			Evidence: []string{
				fmt.Sprintf("%s %s: %s", e.Time.Local().Format("15:04:05"), inst, e.Detail),
				"not restarted: it would fail the same way; requests get a 503 at once instead of waiting for hold_timeout",
			},
			Fix:              fix,
			RequestsAffected: len(affected), SampleRequestIDs: sampleIDs(affected),
		}
		f.FirstSeen, f.LastSeen = span(affected)
		out = append(out, f)
	}
	return out
}

// notExecutablePrefix begins the detail of an exit event whose command's
// program cannot be run (process.NotExecutableError), dirUnusablePrefix
// one whose directory cannot be entered (process.DirError).
const (
	notExecutablePrefix = "could not start: executable "
	dirUnusablePrefix   = "could not start: app directory "
)

// startFailure: instances that never became ready: start timeouts and
// commands that could not start. One that became ready after its last
// failed start is past: it says when, and the state of its process now
// (its ports, its output) is not the failed one's.
func startFailure(ev *Evidence, found []Finding) []Finding {
	type agg struct {
		app, instance string
		n             int
		last          string
		first, at     time.Time
	}
	byInst := map[string]*agg{}
	var order []string
	for _, e := range ev.Events {
		isTimeout := e.Type == "start_timeout"
		cannot := e.Type == "exit" && strings.HasPrefix(e.Detail, "could not start")
		if !isTimeout && !cannot {
			continue
		}
		a := byInst[e.Instance]
		if a == nil {
			a = &agg{app: e.App, instance: e.Instance, first: e.Time}
			byInst[e.Instance] = a
			order = append(order, e.Instance)
		}
		a.n++
		a.last, a.at = e.Detail, e.Time
	}
	var out []Finding
	for _, id := range order {
		a := byInst[id]
		if covered(found, a.app, a.instance) {
			continue
		}
		affected := accessWhere(ev, func(x *Access) bool { return x.App == a.app && x.Cause == "no_ready_instance" })
		f := Finding{
			ID: "start_failure", Severity: Critical, App: a.app, Instance: a.instance,
			Title:            fmt.Sprintf("%s never became ready", a.instance),
			Evidence:         []string{fmt.Sprintf("%s: %s", plural(a.n, "failed start", "failed starts"), a.last)},
			Fix:              "see the app's output (gatehouse logs --app " + a.app + "); make the app listen on PORT within start_timeout, or raise start_timeout if it is just slow",
			RequestsAffected: len(affected), SampleRequestIDs: sampleIDs(affected),
			FirstSeen: a.first, LastSeen: a.at,
		}
		if strings.Contains(a.last, "could not start") {
			f.Fix = "the command cannot be run: check command: and dir: in the config (is the program installed and on PATH?)"
		}
		if since, ok := readySince(ev, a.instance, a.at); ok {
			f.Past = true
			f.Title = fmt.Sprintf("%s failed to start %s, then became ready", a.instance, plural(a.n, "time", "times"))
			f.Evidence = prepend(f.Evidence, since)
			out = append(out, f)
			continue
		}
		if in := snapInstance(ev, a.instance); in != nil && in.Stats != nil {
			if len(in.Stats.Listening) == 0 {
				f.Evidence = append(f.Evidence, "the process listens on no port at all (from /proc): it never called listen()")
			}
			f.Evidence = append(f.Evidence, outputLines(in.Output, 5)...)
		}
		out = append(out, f)
	}
	return out
}

// readySince says when instance id became ready after a start that
// failed at from: its ready event, or else the snapshot, taken since,
// that has it ready (the event lost, or before a restart of gatehouse).
func readySince(ev *Evidence, id string, from time.Time) (string, bool) {
	if e, ok := backSince(ev, id, from, telemetry.EventReady); ok {
		return fmt.Sprintf("past: %s became ready at %s", id, clock(e.Time)), true
	}
	if in := snapInstance(ev, id); in != nil && in.State == "ready" && ev.State.At.After(from) {
		return fmt.Sprintf("past: %s was ready at %s", id, clock(ev.State.At)), true
	}
	return "", false
}

// startFailed reports whether an exit event is a start that failed: a
// command that could not be run, or a process gatehouse killed because it
// was not ready within start_timeout. Those are start_failure's to report,
// not a crash or a restart loop of an app that ran.
func startFailed(e telemetry.Event) bool {
	return strings.HasPrefix(e.Detail, "could not start") || strings.Contains(e.Detail, "after start_timeout")
}

func snapInstance(ev *Evidence, id string) *InstanceSnap {
	for _, ai := range instances(ev) {
		if ai.in.ID == id {
			return ai.in
		}
	}
	return nil
}

func outputLines(lines []string, n int) []string {
	var kept []string
	for _, l := range lines {
		if strings.TrimSpace(l) != "" {
			kept = append(kept, l)
		}
	}
	kept = lastN(kept, n)
	out := make([]string, 0, len(kept))
	for _, l := range kept {
		out = append(out, "output: "+l)
	}
	return out
}
