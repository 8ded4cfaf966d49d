package config

import "testing"

// The keys an orchestrator's probes and termination depend on.
func TestValidateOrchestratorKeys(t *testing.T) {
	checkParses(t, []parseCase{
		{"all valid", "shutdown_delay: 5s\nhealth_prefix: /.gatehouse\n" + web + "    instances: 2\n    min_ready: 2\n", nil},
		{"min_ready 0", web + "    min_ready: 0\n", nil},
		{"negative shutdown_delay", "shutdown_delay: -1s\n" + web,
			[]string{`g.yaml:1: shutdown_delay: duration "-1s" must not be negative`}},
		{"shutdown_delay needs a unit", "shutdown_delay: 5\n" + web,
			[]string{`g.yaml:1: shutdown_delay: "5" needs a unit, e.g. 30s`}},
		{"health_prefix without a slash", "health_prefix: gatehouse\n" + web,
			[]string{`g.yaml:1: health_prefix: "gatehouse" must be a path such as "/.gatehouse": starting with "/", not ending with one`}},
		{"health_prefix is the root", "health_prefix: /\n" + web,
			[]string{`g.yaml:1: health_prefix: "/" must be a path such as "/.gatehouse": starting with "/", not ending with one`}},
		{"health_prefix with a query", "health_prefix: /x?y\n" + web,
			[]string{`g.yaml:1: health_prefix: "/x?y" must be a plain path (no query, fragment, escapes or spaces)`}},
		{"min_ready above instances", web + "    instances: 2\n    min_ready: 3\n",
			[]string{`g.yaml:5: apps.web.min_ready: must be between 0 and instances (2), got 3`}},
		{"negative min_ready", web + "    min_ready: -1\n",
			[]string{`g.yaml:4: apps.web.min_ready: must be between 0 and instances (1), got -1`}},
	})
}

// min_ready's default depends on what the app is: one ready instance for
// an app gatehouse runs, none for an external pool.
func TestReadyNeededDefaults(t *testing.T) {
	two := 2
	for _, tt := range []struct {
		name string
		app  App
		want int
	}{
		{"command", App{Command: Command{"x"}}, 1},
		{"external pool", App{Upstreams: []string{"10.0.0.5:80"}}, 0},
		{"set", App{Upstreams: []string{"10.0.0.5:80"}, MinReady: &two}, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.app.ReadyNeeded(); got != tt.want {
				t.Errorf("ReadyNeeded() = %d, want %d", got, tt.want)
			}
		})
	}
}
