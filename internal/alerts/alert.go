package alerts

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"
	"time"
)

// Alert names. They follow diagnose's finding ids where one exists.
const (
	NoReadyInstance = "no_ready_instance"
	RestartLoop     = "restart_loop"
	StartFailure    = "start_failure"
	AutoHealPaused  = "autoheal_paused"
	ErrorRate       = "error_rate"
	CertExpiring    = "cert_expiring"
	AutoscaleAtMax  = "autoscale_at_max"
)

// severity is each alert's severity label: critical when users are
// being turned away now.
var severity = map[string]string{
	NoReadyInstance: "critical", ErrorRate: "critical",
	RestartLoop: "warning", StartFailure: "warning", AutoHealPaused: "warning",
	CertExpiring: "warning", AutoscaleAtMax: "warning",
}

// Statuses of a notification, as Alertmanager spells them.
const (
	Firing   = "firing"
	Resolved = "resolved"
)

// Key identifies an episode: one alert about one app (or certificate)
// and, for per-instance alerts, one instance. Cert alerts have no app:
// Instance holds the certificate's name.
type Key struct {
	Alert, App, Instance string
}

// Notification is one change of an episode, as sent to receivers.
type Notification struct {
	Key
	Status      string
	Summary     string
	Description string
	StartsAt    time.Time
	// EndsAt is zero while firing.
	EndsAt time.Time
}

// Labels are the alert's Alertmanager labels.
func (n *Notification) Labels() map[string]string {
	l := map[string]string{"alertname": n.Alert, "severity": severity[n.Alert], "source": "gatehouse"}
	if n.App != "" {
		l["app"] = n.App
	}
	if n.Instance != "" {
		if n.Alert == CertExpiring {
			l["certificate"] = n.Instance
		} else {
			l["instance"] = n.Instance
		}
	}
	return l
}

// Fingerprint identifies the alert (not the episode) by its labels, as
// Alertmanager's does: 16 hex digits.
func (n *Notification) Fingerprint() string {
	l := n.Labels()
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := fnv.New64a()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(l[k]))
		h.Write([]byte{0xff})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// Text is the one line a chat message shows.
func (n *Notification) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s", strings.ToUpper(n.Status), n.Alert)
	if n.App != "" {
		b.WriteString(" " + n.App)
	}
	if n.Instance != "" {
		b.WriteString(" " + n.Instance)
	}
	b.WriteString(": " + n.Summary)
	if n.Status == Resolved {
		fmt.Fprintf(&b, " (lasted %s)", n.EndsAt.Sub(n.StartsAt).Round(time.Second))
	}
	return b.String()
}
