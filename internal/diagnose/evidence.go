package diagnose

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

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
}

// Load reads the evidence under a data dir from since on.
func Load(dir string, since time.Time) (*Evidence, error) {
	ev := &Evidence{Since: since, Until: time.Now()}
	events, err := telemetry.ReadEvents(filepath.Join(dir, "events.log"), since)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("diagnose: %w", err)
	}
	ev.Events = events
	if ev.Access, err = readAccess(filepath.Join(dir, "access.log"), since); err != nil {
		return nil, fmt.Errorf("diagnose: %w", err)
	}
	if ev.State, err = ReadSnapshot(dir); err != nil {
		return nil, fmt.Errorf("diagnose: %w", err)
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("diagnose: data dir: %w", err)
	}
	return ev, nil
}

// readAccess parses the access log, keeping lines from since on and
// skipping lines it cannot parse (a torn last line, one longer than
// telemetry.MaxLine).
func readAccess(path string, since time.Time) ([]Access, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open access log: %w", err)
	}
	defer f.Close()
	var out []Access
	// A line too long for an entry (a request with a huge head, garbage
	// a crash left) is skipped like any other line that does not parse,
	// rather than ending the read with an error.
	err = telemetry.ReadLines(f, func(line []byte) {
		var a Access
		if json.Unmarshal(line, &a) != nil || a.Time.Before(since) {
			return
		}
		out = append(out, a)
	})
	if err != nil {
		return out, fmt.Errorf("read access log: %w", err)
	}
	return out, nil
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
	r.Findings = group(r.Findings)
	r.MarkPast(ev.State)
	return r
}
