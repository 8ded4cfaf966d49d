package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// An alerts: block takes its defaults for what it leaves out, and each
// problem is reported on its line.
func TestAlerts(t *testing.T) {
	const head = web + "alerts:\n"
	checkParses(t, []parseCase{
		{"valid", head + "  receivers:\n    - name: ops\n      url: https://hooks.example.com/x\n      format: alertmanager\n      headers: {Authorization: Bearer x}\n  error_rate: {above: 0.1, window: 1m}\n", nil},
		{"no receivers", head + "  repeat_interval: 1h\n", []string{`g.yaml:4: alerts.receivers: at least one receiver is required, e.g. [{name: ops, url: https://hooks.example.com/x}]`}},
		{"receiver problems", head + "  receivers:\n    - url: ftp://x\n      format: xml\n      timeout: 0s\n    - name: a\n      url: http://x/\n    - name: a\n      url: http://x/\n",
			[]string{
				`g.yaml:6: alerts.receivers[0].name: required`,
				`g.yaml:6: alerts.receivers[0].url: must be an absolute http or https URL (its scheme is neither http nor https)`,
				`g.yaml:7: alerts.receivers[0].format: "xml" must be one of json, alertmanager, slack`,
				`g.yaml:8: alerts.receivers[0].timeout: must be > 0`,
				`g.yaml:11: alerts.receivers[2].name: duplicate receiver name "a"`,
			}},
		{"thresholds", head + "  receivers: [{name: a, url: \"http://x/\"}]\n  repeat_interval: 0s\n  error_rate: {above: 1.5, window: 1s}\n  restart_loop: {exits: 0}\n",
			[]string{
				`g.yaml:6: alerts.repeat_interval: must be > 0`,
				`g.yaml:7: alerts.error_rate.above: must be between 0 and 1 (a share of requests; 0 = off), got 1.5`,
				`g.yaml:7: alerts.error_rate.window: must be at least 10s`,
				`g.yaml:8: alerts.restart_loop.exits: must be ≥ 1, got 0`,
			}},
		{"headers gatehouse could not send", head + "  receivers:\n    - name: a\n      url: http://x/\n      headers:\n        \"Bad Name\": x\n        X-Token: \"a\\r\\nX-Evil: 1\"\n        Host: other.example\n",
			[]string{
				`g.yaml:9: alerts.receivers[0].headers.Bad Name: "Bad Name" is not a valid header name`,
				`g.yaml:10: alerts.receivers[0].headers.X-Token: the value has a control character (a line break?), which no HTTP request can carry`,
				`g.yaml:11: alerts.receivers[0].headers.Host: is set by gatehouse from the url (it would be ignored)`,
			}},
		{"not a number", head + "  receivers: [{name: a, url: \"http://x/\"}]\n  error_rate: {above: lots}\n",
			[]string{`g.yaml:6: alerts.error_rate.above: must be a number, got "lots"`}},
	})
}

func TestAlertsDefaults(t *testing.T) {
	c, err := Parse("g.yaml", []byte(web+"alerts:\n  receivers: [{name: ops, url: \"https://h.example/x\"}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := NewAlerts()
	want.Receivers = []*Receiver{NewReceiver()}
	want.Receivers[0].Name, want.Receivers[0].URL = "ops", "https://h.example/x"
	if diff := cmp.Diff(want, c.Alerts); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
	if c.Alerts.RepeatInterval.D() != 4*time.Hour || c.Alerts.Receivers[0].Timeout.D() != 5*time.Second {
		t.Errorf("defaults: %+v", c.Alerts)
	}
	if c, _ := Parse("g.yaml", []byte(web)); c.Alerts != nil {
		t.Errorf("no alerts: block gave %+v", c.Alerts)
	}
}
