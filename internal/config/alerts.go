package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Alerts is the top-level alerts: block: webhook receivers told when an
// episode (an app with no ready instance, a restart loop, …) begins and
// ends. nil (absent) means no alerts are evaluated or sent.
type Alerts struct {
	// Receivers are the webhooks every notification goes to. At least one.
	Receivers []*Receiver `yaml:"receivers" secret:"false"`
	// RepeatInterval is how long a still-firing alert waits before it is
	// notified again. Default 4h (Alertmanager's); must be > 0.
	RepeatInterval Duration `yaml:"repeat_interval" secret:"false"`
	// NoReadyFor is how long an app with a command must have no ready
	// instance before no_ready_instance fires: a restart, or the first
	// start of an app that boots in 20s, is not an episode. Default 30s;
	// 0 fires at the first check.
	NoReadyFor Duration `yaml:"no_ready_for" secret:"false"`
	// RestartLoop is restart_loop's threshold.
	RestartLoop RestartLoopAlert `yaml:"restart_loop" secret:"false"`
	// ErrorRate is error_rate's threshold.
	ErrorRate ErrorRateAlert `yaml:"error_rate" secret:"false"`
}

// RestartLoopAlert fires when one instance exits on its own Exits times
// within Window (diagnose's restart_loop: 3 exits, about a minute apart
// at most), and resolves when fewer remain in the window.
type RestartLoopAlert struct {
	// Exits is how many exits make a loop. Default 3; at least 1.
	Exits int `yaml:"exits" secret:"false"`
	// Window is the sliding window they are counted in. Default 3m.
	Window Duration `yaml:"window" secret:"false"`
}

// ErrorRateAlert fires when an app's 5xx answers (from the app or from
// gatehouse) are at least Above of its requests over Window, with at
// least MinRequests requests in it.
type ErrorRateAlert struct {
	// Above is the share of 5xx, from 0 to 1. Default 0.05; 0 turns the
	// alert off.
	Above float64 `yaml:"above" secret:"false"`
	// Window is the sliding window. Default 5m; at least 10s.
	Window Duration `yaml:"window" secret:"false"`
	// MinRequests is the fewest requests in the window the rate is
	// judged on (two failures of three are not an outage). Default 20.
	MinRequests int `yaml:"min_requests" secret:"false"`
}

// Receiver is one webhook.
type Receiver struct {
	// Name identifies the receiver in metrics and the Alertmanager body.
	// Required, unique.
	Name string `yaml:"name" secret:"false"`
	// URL is an absolute http or https URL. Required. A secret: a Slack or
	// webhook URL is itself the credential (see SecretTag).
	URL string `yaml:"url" secret:"true"`
	// Format is the body: json (default; gatehouse's own, with a text
	// field Slack incoming webhooks accept), alertmanager (the
	// Alertmanager webhook body, version 4) or slack (only text).
	Format string `yaml:"format" secret:"false"`
	// Headers are added to every request (Authorization, say). Their
	// values are secrets; their names are not.
	Headers map[string]string `yaml:"headers" secret:"true"`
	// Timeout bounds one attempt. Default 5s.
	Timeout Duration `yaml:"timeout" secret:"false"`
	// MaxAttempts is how many times a notification is tried before it is
	// dropped, with exponential back-off from 1s to 1m between tries.
	// Default 5; at least 1.
	MaxAttempts int `yaml:"max_attempts" secret:"false"`
	// RatePerMinute is the most notifications sent to this receiver in a
	// minute; the rest wait in its queue. Default 30; at least 1.
	RatePerMinute int `yaml:"rate_per_minute" secret:"false"`
	// QueueSize is how many notifications may wait; when full the oldest
	// is dropped (and counted). Default 256; at least 1.
	QueueSize int `yaml:"queue_size" secret:"false"`
}

// Receiver formats.
const (
	FormatJSON         = "json"
	FormatAlertmanager = "alertmanager"
	FormatSlack        = "slack"
)

var receiverFormats = []string{FormatJSON, FormatAlertmanager, FormatSlack}

// NewAlerts returns the defaults of an alerts: block that is present.
func NewAlerts() *Alerts {
	return &Alerts{
		RepeatInterval: Duration(4 * time.Hour),
		NoReadyFor:     Duration(30 * time.Second),
		RestartLoop:    RestartLoopAlert{Exits: 3, Window: Duration(3 * time.Minute)},
		ErrorRate:      ErrorRateAlert{Above: 0.05, Window: Duration(5 * time.Minute), MinRequests: 20},
	}
}

// NewReceiver returns a receiver's defaults.
func NewReceiver() *Receiver {
	return &Receiver{Format: FormatJSON, Timeout: Duration(5 * time.Second), MaxAttempts: 5, RatePerMinute: 30, QueueSize: 256}
}

var (
	alertsType   = reflect.TypeFor[Alerts]()
	receiverType = reflect.TypeFor[Receiver]()
)

func decodeFloat(n *yaml.Node, v reflect.Value) error {
	if !isNumberNode(n) {
		return fmt.Errorf("must be a number, got %q", n.Value)
	}
	f, err := coreNumber(n.Value)
	switch {
	case errors.Is(err, errYAML11Number):
		return fmt.Errorf("must be a number, got %q, %s: write e.g. 0.05, 1000 or 0x3e8", n.Value, yaml11Only)
	case err != nil:
		return fmt.Errorf("number %q is out of range", n.Value)
	}
	v.SetFloat(f)
	return nil
}

// alerts checks the alerts: block.
func (v *validator) alerts(a *Alerts, path string) {
	if a == nil {
		return
	}
	if len(a.Receivers) == 0 {
		v.errorf(path+".receivers", "at least one receiver is required, e.g. [{name: ops, url: https://hooks.example.com/x}]")
	}
	names := map[string]bool{}
	for i, r := range a.Receivers {
		p := indexPath(path+".receivers", i)
		if r == nil {
			v.errorf(p, "must be a receiver: {name: ops, url: https://…}")
			continue
		}
		v.receiver(r, p)
		if r.Name != "" && names[r.Name] {
			v.errorf(p+".name", "duplicate receiver name %q", r.Name)
		}
		names[r.Name] = true
	}
	v.positive(path+".repeat_interval", a.RepeatInterval)
	if a.NoReadyFor < 0 {
		v.errorf(path+".no_ready_for", "must be ≥ 0 (0 = fire at the first check)")
	}
	v.atLeastOne(path+".restart_loop.exits", a.RestartLoop.Exits)
	v.positive(path+".restart_loop.window", a.RestartLoop.Window)
	if e := a.ErrorRate; e.Above < 0 || e.Above > 1 {
		v.errorf(path+".error_rate.above", "must be between 0 and 1 (a share of requests; 0 = off), got %g", e.Above)
	}
	if a.ErrorRate.Window < Duration(10*time.Second) {
		v.errorf(path+".error_rate.window", "must be at least 10s")
	}
	if a.ErrorRate.MinRequests < 0 {
		v.errorf(path+".error_rate.min_requests", "must be ≥ 0")
	}
}

func (v *validator) receiver(r *Receiver, path string) {
	if r.Name == "" {
		v.errorf(path+".name", "required")
	}
	if why := notHTTPURL(r.URL); why != "" {
		v.errorf(path+".url", "%smust be an absolute http or https URL (%s)", quoted(receiverType, "URL", r.URL), why)
	}
	if !slices.Contains(receiverFormats, r.Format) {
		v.errorf(path+".format", "%q must be one of %s", r.Format, strings.Join(receiverFormats, ", "))
	}
	v.receiverHeaders(r.Headers, path+".headers")
	v.positive(path+".timeout", r.Timeout)
	v.atLeastOne(path+".max_attempts", r.MaxAttempts)
	v.atLeastOne(path+".rate_per_minute", r.RatePerMinute)
	v.atLeastOne(path+".queue_size", r.QueueSize)
}

// notHTTPURL says what keeps s from being an absolute http or https URL,
// without quoting any of s (a scheme may be a token's prefix); "" when
// nothing does.
func notHTTPURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return "it does not parse as a URL"
	case u.Scheme == "":
		return "it has no scheme"
	case u.Scheme != "http" && u.Scheme != "https":
		return "its scheme is neither http nor https"
	case u.Host == "":
		return "it has no host"
	}
	return ""
}

// quoted is value quoted and followed by a space, for a message about
// the field named field of struct type t; "" when the field is a secret
// (see SecretTag), whose value no message may carry.
func quoted(t reflect.Type, field, value string) string {
	if fieldSecret(t, field) {
		return ""
	}
	return strconv.Quote(value) + " "
}

// receiverHeaders checks headers at load: net/http refuses a bad one only
// when it sends, and every notification would then fail after all its
// retries. A line break in a value must never become a header of its own.
func (v *validator) receiverHeaders(h map[string]string, path string) {
	for _, k := range slices.Sorted(maps.Keys(h)) {
		p := path + "." + k
		switch {
		case !isToken(k):
			v.errorf(p, "%q is not a valid header name", k)
		case strings.EqualFold(k, "Host"):
			v.errorf(p, "is set by gatehouse from the url (it would be ignored)")
		case slices.Contains([]string{"content-length", "transfer-encoding", "connection"}, strings.ToLower(k)):
			v.errorf(p, "is set by gatehouse")
		case strings.ContainsFunc(h[k], func(c rune) bool { return c < ' ' && c != '\t' || c == 0x7f }):
			v.errorf(p, "the value has a control character (a line break?), which no HTTP request can carry")
		}
	}
}

// isToken reports whether s is an HTTP token (RFC 9110 5.6.2), what a
// header name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
