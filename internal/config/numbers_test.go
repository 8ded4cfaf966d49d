package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Numbers are read as YAML 1.2's core schema reads them, as an editor
// checking the file against the JSON Schema does: decimal (leading
// zeros and all), 0x and 0o integers, and a whole number written with a
// fraction or an exponent where an integer goes. YAML 1.1's other forms
// (digits grouped with "_", 0b) are text to such an editor, and are
// refused, at their line and key, rather than read as a number the
// editor did not show.
func TestNumbersAreReadAsYAML12ReadsThem(t *testing.T) {
	const head = "apps:\n  web:\n    command: x\n"
	tests := []struct {
		name    string
		keys    string // apps.web's keys from line 4, or the top level's after apps
		get     func(*Config) any
		want    any
		wantErr []string
	}{
		{"decimal", "    queue_size: 1000\n", queueSize, 1000, nil},
		{"a leading zero is still decimal", "    queue_size: 010\n", queueSize, 10, nil},
		{"a leading zero before 8", "    queue_size: 08\n", queueSize, 8, nil},
		{"hexadecimal", "    queue_size: 0x3e8\n", queueSize, 1000, nil},
		{"octal", "    queue_size: 0o1750\n", queueSize, 1000, nil},
		{"a whole number with a fraction", "    queue_size: 2.0\n", queueSize, 2, nil},
		{"a whole number with an exponent", "    queue_size: 1e3\n", queueSize, 1000, nil},
		{"digits grouped with underscores", "    queue_size: 1_000\n", queueSize, nil,
			[]string{`g.yaml:4: apps.web.queue_size: must be an integer, got "1_000", which only YAML 1.1 reads as a number (an editor reads it as text): write e.g. 1000, 0x3e8 or 0o1750`}},
		{"binary", "    queue_size: 0b11\n", queueSize, nil,
			[]string{`g.yaml:4: apps.web.queue_size: must be an integer, got "0b11", which only YAML 1.1 reads as a number (an editor reads it as text): write e.g. 1000, 0x3e8 or 0o1750`}},
		{"a fraction", "    queue_size: 2.5\n", queueSize, nil,
			[]string{`g.yaml:4: apps.web.queue_size: must be an integer, got "2.5"`}},
		{"a size in hexadecimal", "    memory_limit: 0x400\n", memoryLimit, Size(1024), nil},
		{"a size with an exponent", "    memory_limit: 1e3\n", memoryLimit, Size(1000), nil},
		{"a zero duration in hexadecimal", "    idle_timeout: 0x0\n", idleTimeout, Duration(0), nil},
		{"a status with a fraction", "    health: {path: /healthz, status: 200.0}\n", healthStatus, StatusRange{200, 200}, nil},
		{"a float in hexadecimal", "    instances: 2\n    autoscale: {max: 4, out: [{metric: held, above: 0x10}]}\n", firstAbove, Threshold{Value: 16}, nil},
		{"an integer in a block with underscores", "    auto_heal: {triggers: {requests: {count: 1_0, interval: 1h}}}\n", nil, nil,
			[]string{`g.yaml:4: apps.web.auto_heal.triggers.requests.count: must be an integer, got "1_0", which only YAML 1.1 reads as a number (an editor reads it as text): write e.g. 1000, 0x3e8 or 0o1750`}},
		{"a float key in hexadecimal", "alerts: {receivers: [{name: ops, url: \"https://hooks.example.com/x\"}], error_rate: {above: 0x0}}\n", errorRate, 0.0, nil},
		{"a float key with underscores", "alerts: {receivers: [{name: ops, url: \"https://hooks.example.com/x\"}], error_rate: {above: 0.0_5}}\n", nil, nil,
			[]string{`g.yaml:4: alerts.error_rate.above: must be a number, got "0.0_5", which only YAML 1.1 reads as a number (an editor reads it as text): write e.g. 0.05, 1000 or 0x3e8`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("g.yaml", []byte(head+tt.keys))
			if diff := cmp.Diff(tt.wantErr, errLines(err)); diff != "" {
				t.Fatalf("errors mismatch (-want +got):\n%s", diff)
			}
			if err != nil || tt.get == nil {
				return
			}
			if diff := cmp.Diff(tt.want, tt.get(c)); diff != "" {
				t.Errorf("value mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func queueSize(c *Config) any    { return c.Apps["web"].QueueSize }
func memoryLimit(c *Config) any  { return c.Apps["web"].MemoryLimit }
func idleTimeout(c *Config) any  { return c.Apps["web"].IdleTimeout }
func healthStatus(c *Config) any { return c.Apps["web"].Health.Status }
func firstAbove(c *Config) any   { return *c.Apps["web"].Autoscale.Out[0].Above }
func errorRate(c *Config) any    { return c.Alerts.ErrorRate.Above }
