package diagnose

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Access is one parsed access log line.
type Access struct {
	Time          time.Time `json:"time"`
	RequestID     string    `json:"request_id"`
	App           string    `json:"app"`
	Instance      string    `json:"instance"`
	Method        string    `json:"method"`
	Path          string    `json:"path"`
	Status        int       `json:"status"`
	DurationMS    float64   `json:"duration_ms"`
	UpstreamMS    float64   `json:"upstream_ms"`
	HeldMS        float64   `json:"held_ms"`
	Attempts      int       `json:"attempts"`
	Cause         string    `json:"cause"`
	RetriedCauses []string  `json:"retried_causes"`
	Detail        string    `json:"detail"`
	Host          string    `json:"host"`
	Client        string    `json:"client"`
	// Rule is the route rule that answered ("rate_limit", "deny
	// 10.0.0.0/8", "not in allow", ...); User who basic_auth or
	// forward_auth established.
	Rule string `json:"rule"`
	User string `json:"user"`
}

// Evidence is everything the detectors look at.
type Evidence struct {
	Since, Until time.Time
	Events       []telemetry.Event
	Access       []Access
	State        Snapshot
	// Unreadable are the files of the data dir that could not be read,
	// whole or in part: the findings are what the others show, and each
	// is named in a finding of its own.
	Unreadable []Unreadable
	// Cut are the logs of which only the newest telemetry.ReadBudget
	// bytes were read, which left out the window's beginning.
	Cut []Cut
}

// Cut is a log whose entries were read from From on only, From later
// than the window's start.
type Cut struct {
	File string // its name under the data dir
	From time.Time
	// Path is where it is when not under the data dir (a custom
	// access_log); "" when it is.
	Path string
}

// Unreadable is a file of the evidence that could not be read, and why.
type Unreadable struct {
	File string // its name under the data dir
	Err  error
	// Path is where it is when not under the data dir (a custom
	// access_log); "" when it is.
	Path string
}

// Load reads the evidence under a data dir from since on: the logs'
// lines from since on, those of the files they were rotated into since
// included, and the last snapshot. Only a data dir
// that cannot be read fails it: a file of it that cannot be read, or not
// whole, is left out (what was read of a log is kept) and noted in
// Unreadable, so that one torn or corrupt file does not hide what the
// others show.
func Load(dir string, since time.Time) (*Evidence, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("diagnose: data dir: %w", err)
	}
	ev := &Evidence{Since: since, Until: time.Now()}
	events, cut, err := telemetry.ReadRotatedEvents(filepath.Join(dir, "events.log"), since)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		ev.Unreadable = append(ev.Unreadable, Unreadable{File: "events.log", Err: err})
	}
	ev.Events = events
	if cut {
		ev.Cut = append(ev.Cut, Cut{File: "events.log", From: oldest(events, func(e telemetry.Event) time.Time { return e.Time }, ev.Until)})
	}
	if ev.State, err = ReadSnapshot(dir); err != nil {
		// Half a snapshot would tell of instances that are not there.
		ev.State = Snapshot{}
		ev.Unreadable = append(ev.Unreadable, Unreadable{File: SnapshotFile, Err: err})
	}
	path, shown, err := accessLogOf(dir, ev.State.AccessLog)
	if err != nil {
		ev.Unreadable = append(ev.Unreadable, Unreadable{File: "access.log", Err: err})
		return ev, nil
	}
	if ev.Access, cut, err = readAccess(path, since); err != nil {
		ev.Unreadable = append(ev.Unreadable, Unreadable{File: "access.log", Err: err, Path: shown})
	}
	if cut {
		ev.Cut = append(ev.Cut, Cut{File: "access.log", From: oldest(ev.Access, func(a Access) time.Time { return a.Time }, ev.Until), Path: shown})
	}
	return ev, nil
}

// ErrAccessLogNotAFile is why there is no access log to read: access_log
// sends it to standard output, or writes none.
var ErrAccessLogNotAFile = errors.New("not written to a file")

// accessLogOf is the access log gatehouse wrote under dir as access_log
// said it (setting): its path, and the path to show when it is not
// data_dir/access.log; an error when it was not written to a file.
func accessLogOf(dir, setting string) (path, shown string, err error) {
	switch setting {
	case "":
		return filepath.Join(dir, "access.log"), "", nil
	case config.AccessLogStdout, config.AccessLogOff:
		return "", "", fmt.Errorf("access_log is %s: %w", setting, ErrAccessLogNotAFile)
	}
	path = setting
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	return path, path, nil
}

// LoadWindow reads the evidence of the window of length d that ends when
// the data dir's gatehouse last wrote its state snapshot, or now if that
// is later or unknown: a gatehouse that stopped hours ago (or the copy of
// its data dir sent with a bug report) is diagnosed over its last d, not
// over hours in which nothing was written.
func LoadWindow(dir string, d time.Duration) (*Evidence, error) {
	end := time.Now()
	if s, err := ReadSnapshot(dir); err == nil && !s.At.IsZero() && s.At.Before(end) {
		end = s.At
	}
	ev, err := Load(dir, end.Add(-d))
	if err != nil {
		return nil, err
	}
	ev.Until = end
	return ev, nil
}

// readAccess parses the access log and the files it was rotated into,
// keeping lines from since on and skipping lines it cannot parse (a torn
// last line, one longer than telemetry.MaxLine). cut says that the read
// budget left out entries from since on: none read is older.
func readAccess(path string, since time.Time) (out []Access, cut bool, err error) {
	older := false
	// A line too long for an entry (a request with a huge head, garbage
	// a crash left) is skipped like any other line that does not parse,
	// rather than ending the read with an error.
	cut, err = telemetry.ReadRotatedNewest(path, since, func(line []byte) {
		var a Access
		if json.Unmarshal(line, &a) != nil {
			return
		}
		if a.Time.Before(since) {
			older = true
			return
		}
		out = append(out, a)
	})
	cut = cut && !older
	if err != nil {
		return out, cut, fmt.Errorf("read access log: %w", err)
	}
	return out, cut, nil
}

// oldest is the earliest time of xs, or none if there are none.
func oldest[T any](xs []T, at func(T) time.Time, none time.Time) time.Time {
	if len(xs) == 0 {
		return none
	}
	t := at(xs[0])
	for _, x := range xs[1:] {
		if at(x).Before(t) {
			t = at(x)
		}
	}
	return t
}

// Run diagnoses the evidence.
func Run(ev *Evidence) Report {
	r := Report{Since: ev.Since.UTC(), Until: ev.Until.UTC(), Requests: len(ev.Access), Findings: []Finding{}}
	for _, a := range ev.Access {
		if a.Status >= 500 {
			r.Errors++
		}
	}
	for _, d := range detectors {
		r.Findings = append(r.Findings, d(ev, r.Findings)...)
	}
	r.Findings = append(r.Findings, unreadable(ev)...)
	r.Findings = append(r.Findings, cutShort(ev)...)
	r.Findings = group(r.Findings)
	r.MarkPast(ev.State)
	return r
}

// missingWith says, for each file of the evidence, what a report without
// it lacks.
var missingWith = map[string]string{
	SnapshotFile: "the instances' state and process statistics: the findings that need them (port_mismatch, probe_rejected, " +
		"upstream_tls, unresponsive, outbound_exhaustion, memory_pressure) are missing, and none is marked past",
	"events.log": "the lifecycle events (exits, restarts, probes, certificates, DNS): the findings that need them are missing or incomplete",
	"access.log": "the requests: their count, their 5xx and the requests each finding cost are missing or incomplete",
}

// evidencePath names a file of the evidence in a finding: file under
// data_dir, or path when it lies elsewhere.
func evidencePath(file, path string) string {
	if path != "" {
		return path
	}
	return "data_dir/" + file
}

// unreadable names each file of the evidence that could not be read.
func unreadable(ev *Evidence) []Finding {
	var out []Finding
	for _, u := range ev.Unreadable {
		fix := "look at the file (is it a regular file gatehouse may read?) and at the disk (full, failing); " +
			"gatehouse appends to it while it runs, and rotates it"
		title := fmt.Sprintf("%s could not be read: the findings are what the other files show", evidencePath(u.File, u.Path))
		switch {
		case u.File == SnapshotFile:
			fix = "gatehouse writes " + SnapshotFile + " anew, whole, every sample_interval while it runs: diagnose again; " +
				"a copy of a data dir should copy it whole; if it stays unreadable, look at the disk (full, failing) and at what else writes data_dir"
		case errors.Is(u.Err, ErrAccessLogNotAFile):
			title = "the access log is not written to a file: the findings are what the other files show"
			fix = "diagnose reads the access log from a file: leave access_log out (data_dir/access.log) or set it to a path, " +
				"where gatehouse also rotates it"
		}
		out = append(out, Finding{
			ID: "evidence_unreadable", Severity: Warning,
			Title:    title,
			Evidence: []string{u.Err.Error(), "missing: " + missingWith[u.File]},
			Fix:      fix,
		})
	}
	return out
}

// cutShort names each log of which only the newest part of the window
// was read: the report's counts and findings are those of that part, and
// a problem of the window's beginning is missing from it.
func cutShort(ev *Evidence) []Finding {
	var out []Finding
	for _, c := range ev.Cut {
		out = append(out, Finding{
			ID: "evidence_cut", Severity: Warning,
			Title: fmt.Sprintf("only the newest %d MiB of %s were read: the findings are those from %s on",
				telemetry.ReadBudget>>20, evidencePath(c.File, c.Path), clock(c.From)),
			Evidence: []string{
				fmt.Sprintf("the window began at %s; what %s holds from then until %s is left out", clock(ev.Since), c.File, clock(c.From)),
				"missing: " + missingWith[c.File],
			},
			Fix: "diagnose reads at most that much of each log, so that a live diagnose of a busy gatehouse stays cheap: " +
				"narrow --since to the part read, or look at the earlier part with gatehouse logs",
		})
	}
	return out
}
