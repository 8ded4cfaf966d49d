package alerts

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// jsonBody is format: json, gatehouse's own. Text is what a Slack (or
// Mattermost, Rocket.Chat) incoming webhook shows.
type jsonBody struct {
	Receiver    string     `json:"receiver"`
	Status      string     `json:"status"`
	Alert       string     `json:"alert"`
	App         string     `json:"app,omitempty"`
	Instance    string     `json:"instance,omitempty"`
	Severity    string     `json:"severity"`
	Summary     string     `json:"summary"`
	Description string     `json:"description,omitempty"`
	StartsAt    time.Time  `json:"startsAt"`
	EndsAt      *time.Time `json:"endsAt,omitempty"`
	Fingerprint string     `json:"fingerprint"`
	Text        string     `json:"text"`
}

// AMBody is the Alertmanager webhook body, version 4.
type AMBody struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []AMAlert         `json:"alerts"`
}

// AMAlert is one alert of an AMBody.
type AMAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// render encodes n in the receiver's format.
func render(r *config.Receiver, n *Notification) ([]byte, error) {
	switch r.Format {
	case config.FormatSlack:
		return json.Marshal(map[string]string{"text": n.Text()})
	case config.FormatAlertmanager:
		return json.Marshal(amBody(r.Name, n))
	default:
		b := jsonBody{Receiver: r.Name, Status: n.Status, Alert: n.Alert, App: n.App, Instance: n.Instance,
			Severity: severity[n.Alert], Summary: n.Summary, Description: n.Description, StartsAt: n.StartsAt.UTC(),
			Fingerprint: n.Fingerprint(), Text: n.Text()}
		if !n.EndsAt.IsZero() {
			end := n.EndsAt.UTC()
			b.EndsAt = &end
		}
		return json.Marshal(b)
	}
}

func amBody(receiver string, n *Notification) *AMBody {
	labels := n.Labels()
	ann := map[string]string{"summary": n.Summary, "description": n.Description}
	group := map[string]string{"alertname": n.Alert}
	if n.App != "" {
		group["app"] = n.App
	}
	// A firing alert's endsAt is Alertmanager's zero time, as its own
	// webhooks send it.
	return &AMBody{
		Version: "4", GroupKey: groupKey(group), Status: n.Status, Receiver: receiver,
		GroupLabels: group, CommonLabels: labels, CommonAnnotations: ann,
		Alerts: []AMAlert{{Status: n.Status, Labels: labels, Annotations: ann, StartsAt: n.StartsAt.UTC(), EndsAt: n.EndsAt.UTC(),
			Fingerprint: n.Fingerprint()}},
	}
}

// groupKey is Alertmanager's: the route's matchers (none) and the group
// labels.
func groupKey(group map[string]string) string {
	keys := make([]string, 0, len(group))
	for k := range group {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%q", k, group[k])
	}
	return "{}:{" + strings.Join(parts, ", ") + "}"
}
