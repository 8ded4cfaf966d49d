package server

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
)

// A reload that changes a block made once at start says the change
// waits for a restart, rather than keeping the old one silently.
func TestReloadNamesTheBlocksARestartApplies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(*config.Config)
		want   []string
	}{
		{"nothing", func(*config.Config) {}, nil},
		{"tracing added", func(c *config.Config) { c.Tracing = config.NewTracing(); c.Tracing.Endpoint = "127.0.0.1:4317" }, []string{"tracing"}},
		{"dumps cap", func(c *config.Config) { c.Dumps.MaxCount = 3 }, []string{"dumps"}},
		{"alerts added", func(c *config.Config) { c.Alerts = config.NewAlerts() }, []string{"alerts"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev, next := config.Default(), config.Default()
			tc.change(next)
			if d := cmp.Diff(tc.want, restartKeys(prev, next)); d != "" {
				t.Errorf("restartKeys (-want +got):\n%s", d)
			}
		})
	}
}
