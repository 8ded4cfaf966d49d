package cli_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// The commands that talk to a running gatehouse find its admin address
// and token in ./gatehouse.yaml. A mistake elsewhere in that file is
// reported as the config's error (FILE:LINE: KEY, exit 2), not hidden
// behind the 401 the admin API answers a request sent without the token;
// and the admin API's refusal says whether the token was missing or wrong.
func TestAdminCommandsReportConfigErrorsAndTokenRefusals(t *testing.T) {
	t.Parallel()
	cfg, _ := harness.FaultApp(t, 1)
	cfg.AdminToken = "the-right-token"
	g := harness.Start(t, cfg)
	admin := strings.TrimPrefix(g.AdminURL, "http://")

	write := func(t *testing.T, yaml string) string {
		t.Helper()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "gatehouse.yaml"), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	typo := write(t, fmt.Sprintf("admin: %q\nadmin_token: the-right-token\napps:\n  web:\n    comand: [/bin/true]\n", admin))
	wrong := write(t, fmt.Sprintf("admin: %q\nadmin_token: not-the-token\napps:\n  web:\n    command: [/bin/true]\n", admin))
	none := t.TempDir()

	for _, tc := range []struct {
		name     string
		dir      string
		args     []string
		wantCode int
		want     string
	}{
		{"status, config with a typo", typo, []string{"status"}, 2, "gatehouse.yaml:5: apps.web.comand: unknown key"},
		{"reload, config with a typo", typo, []string{"reload"}, 2, "gatehouse.yaml:5: apps.web.comand: unknown key"},
		{"status --admin, config with a typo", typo, []string{"status", "--admin", g.AdminURL}, 2, "gatehouse.yaml:5: apps.web.comand: unknown key"},
		{"status, wrong token in the config", wrong, []string{"status"}, 1, "admin token not accepted"},
		{"reload, wrong token in the config", wrong, []string{"reload"}, 1, "admin token not accepted"},
		{"status, no config and no token", none, []string{"status", "--admin", g.AdminURL}, 1, "admin token required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := gatehouse(t, tc.dir, tc.args...)
			if code != tc.wantCode || !strings.Contains(stderr, tc.want) {
				t.Errorf("gatehouse %s: exit %d, stderr:\n%s\nwant exit %d and %q", strings.Join(tc.args, " "), code, stderr, tc.wantCode, tc.want)
			}
			if tc.wantCode == 2 && strings.Contains(stderr, "token") {
				t.Errorf("a config error talks of the token:\n%s", stderr)
			}
		})
	}
}
