package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// sharedAnchors: a shared env of nvars variables, and a shared defaults
// block, reused by every one of napps apps: linear, not a bomb.
func sharedAnchors(napps, nvars int) string {
	var b strings.Builder
	b.WriteString("apps:\n  app0: &app\n    command: [./server]\n    health: {path: /healthz, interval: 5s}\n    routes: [\"app0.example.com/\"]\n    env: &env\n")
	for i := range nvars {
		fmt.Fprintf(&b, "      VAR_%d: value-%d\n", i, i)
	}
	for i := 1; i < napps; i++ {
		fmt.Fprintf(&b, "  app%d:\n    <<: *app\n    routes: [\"app%d.example.com/\"]\n", i, i)
	}
	return b.String()
}

// TestParseSharedAnchorsAtScale: anchors reused by hundreds of apps are a
// large but legitimate config, which the alias budget must not refuse
// (it did below 180,000 nodes of expansion: 300 apps sharing 200 vars).
func TestParseSharedAnchorsAtScale(t *testing.T) {
	for _, tc := range []struct{ apps, vars int }{{100, 50}, {300, 100}, {300, 200}, {500, 300}} {
		y := sharedAnchors(tc.apps, tc.vars)
		start := time.Now()
		c, err := Parse("g.yaml", []byte(y))
		el := time.Since(start)
		if err != nil {
			t.Errorf("%d apps sharing %d env vars (%d lines): %v", tc.apps, tc.vars, strings.Count(y, "\n"), err)
			continue
		}
		if len(c.Apps) != tc.apps || len(c.Apps["app1"].Env) != tc.vars {
			t.Errorf("decoded %d apps", len(c.Apps))
		}
		_ = el
	}
}
