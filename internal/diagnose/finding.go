package diagnose

import (
	"sort"
	"time"
)

// Severity of a finding.
type Severity string

const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
	Info     Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case Critical:
		return 0
	case Warning:
		return 1
	}
	return 2
}

// Finding is one diagnosed problem. The JSON names are public.
type Finding struct {
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	App      string   `json:"app,omitempty"`
	Instance string   `json:"instance,omitempty"`
	// Instances are the instances of App that share the cause, when
	// there are several: one finding names them all, and Instance is "".
	Instances []string `json:"instances,omitempty"`
	// Past: App is no longer configured, none of the instances the
	// finding names runs any more, or they have recovered (answer their
	// probes again, became ready). It is kept, for its evidence, after
	// the current findings.
	Past             bool      `json:"past,omitempty"`
	Title            string    `json:"title"`
	Evidence         []string  `json:"evidence"`
	Fix              string    `json:"fix"`
	RequestsAffected int       `json:"requests_affected"`
	SampleRequestIDs []string  `json:"sample_request_ids,omitempty"`
	FirstSeen        time.Time `json:"first_seen,omitzero"`
	LastSeen         time.Time `json:"last_seen,omitzero"`
}

// Report is the result of a diagnosis.
type Report struct {
	Since    time.Time `json:"since"`
	Until    time.Time `json:"until"`
	Requests int       `json:"requests"`
	Errors   int       `json:"errors_5xx"`
	Findings []Finding `json:"findings"`
}

// priority orders detectors from the most specific cause to the most
// general symptom: a port mismatch explains start timeouts, holds and
// 503s, so it is named first.
var priority = map[string]int{
	"command_not_executable": 0, "app_dir_unusable": 0, "port_mismatch": 0, "upstream_tls": 1, "probe_rejected": 1, "restart_loop": 2, "start_failure": 3, "crash": 4,
	"unresponsive": 5, "unhealthy_recycled": 5, "outbound_exhaustion": 6, "memory_pressure": 7, "keepalive_race": 8,
	"overload": 9, "slow_requests": 10, "cold_start": 11, "app_errors": 12,
	"certificate_failed": 13, "certificate_expiring": 14, "certificate_reload_failed": 15,
	"certificate_chain_incomplete": 15, "dns_lookup_failed": 16,
	"auth_unavailable": 17, "rate_limited": 18, "access_denied": 19,
	"evidence_unreadable": -1, "evidence_cut": -1, // what the report lacks comes before what it says
}

// rank sorts findings most important first: current before past, then
// severity, then how specific the cause is, then how many requests it
// cost.
func rank(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Past != b.Past {
			return b.Past
		}
		if a.Severity.rank() != b.Severity.rank() {
			return a.Severity.rank() < b.Severity.rank()
		}
		if priority[a.ID] != priority[b.ID] {
			return priority[a.ID] < priority[b.ID]
		}
		return a.RequestsAffected > b.RequestsAffected
	})
}
