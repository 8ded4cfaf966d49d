package scaffold_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/scaffold"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Every config Render writes for a detected app is one gatehouse
// validate accepts, running the plan's command with its env; an unknown
// app's template is refused at its command until it is filled in.
func TestRenderedConfigPassesValidation(t *testing.T) {
	for _, tc := range detectCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := scaffold.Detect(writeTree(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(scaffold.ConfigFile, scaffold.Render(p))
			if p.Runtime == scaffold.Unknown {
				var ce config.Errors
				if !errors.As(err, &ce) || len(ce) != 1 || ce[0].Path != "apps.web.command" {
					t.Fatalf("template: Parse error = %v, want one problem at apps.web.command", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, scaffold.Render(p))
			}
			web := cfg.Apps["web"]
			if diff := cmp.Diff(config.ShellCommand(p.Command), web.Command); diff != "" {
				t.Errorf("command (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(p.Env, web.Env); len(p.Env) > 0 && diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
			if web.Health.Path != "" || cfg.Listen != scaffold.Listen || cfg.Admin != scaffold.Admin {
				t.Errorf("health path %q, listen %q, admin %q: want the TCP probe, %s and %s",
					web.Health.Path, cfg.Listen, cfg.Admin, scaffold.Listen, scaffold.Admin)
			}
		})
	}
}

// The written file explains itself: what was detected and why, what to
// check, the order of the rules, the next commands, the probe.
func TestRenderExplainsTheConfig(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
	}{
		{"express", map[string]string{
			"package.json": `{"scripts": {"start": "node server.js"}, "dependencies": {"express": "^4"}}`,
			"server.js":    "app.listen(3000)"}},
		{"flask", map[string]string{"requirements.txt": "flask\n", "app.py": "app = Flask(__name__)\n"}},
		{"go", map[string]string{"go.mod": "module example.com/hello\n", "main.go": "package main\n// PORT\nvar _ = \"PORT\"\n"}},
		{"unknown", map[string]string{"Gemfile": "gem 'rake'\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := scaffold.Detect(writeTree(t, tc.files))
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join("testdata", tc.name+".golden"), string(scaffold.Render(p)))
		})
	}
}
