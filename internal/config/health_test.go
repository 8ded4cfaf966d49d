package config

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// health.recycle_after: recycling an instance unhealthy for an hour is
// the default, as on the seed platform; 0 turns it off, and an external
// pool, with no process to recycle, may not set it.
func TestHealthRecycleAfter(t *testing.T) {
	for _, tt := range []struct {
		name string
		yaml string
		want time.Duration
	}{
		{"default an hour", web, time.Hour},
		{"off", web + "    health: {recycle_after: 0}\n", 0},
		{"set", web + "    health: {path: /healthz, recycle_after: 10m}\n", 10 * time.Minute},
		{"external pool's default", "apps:\n  web:\n    upstreams: [\"10.0.0.5:80\"]\n", time.Hour},
		{"external pool turned off", "apps:\n  web:\n    upstreams: [\"10.0.0.5:80\"]\n    health: {recycle_after: 0s}\n", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("g.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, c.Apps["web"].Health.RecycleAfter.D()); diff != "" {
				t.Errorf("recycle_after (-want +got):\n%s", diff)
			}
		})
	}
	checkParses(t, []parseCase{
		{"negative", web + "    health:\n      recycle_after: -1s\n",
			[]string{`g.yaml:5: apps.web.health.recycle_after: duration "-1s" must not be negative`}},
		{"without a unit", web + "    health: {recycle_after: 60}\n",
			[]string{`g.yaml:4: apps.web.health.recycle_after: "60" needs a unit, e.g. 30s`}},
		{"on an external pool", "apps:\n  web:\n    upstreams: [\"10.0.0.5:80\"]\n    health:\n      recycle_after: 1h\n",
			[]string{`g.yaml:5: apps.web.health.recycle_after: only for an app with a command: an external pool's upstreams (upstreams:) have no process to recycle; leave it out`}},
	})
}
