package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// A reload applies through a new process (an upgrade) every top-level
// change that only a new process applies, or says so; it does not keep the
// old value silently, to be applied by whichever upgrade or restart comes
// next. The public listeners' limits (head, keep-alive and send timeouts,
// request head size, connection bound), the admin token and the sampling
// interval are read once, when the process starts.
func TestReloadNamesEveryKeyThatTakesANewProcess(t *testing.T) {
	for _, tc := range []struct{ key, yaml string }{
		{"limits", "limits: {keepalive_timeout: 7s}\n"},
		{"admin_token", "admin_token: s3cret\n"},
		{"sample_interval", "sample_interval: 3s\n"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "gatehouse.yaml")
			bin, _ := json.Marshal(testutil.BuildBinary(t, testutil.FaultAppPkg))
			dd, _ := json.Marshal(filepath.Join(dir, "data"))
			write := func(extra string) {
				yaml := fmt.Sprintf("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\ndata_dir: %s\n%sapps:\n  web:\n    command: [%s]\n    health: {path: /healthz}\n", dd, extra, bin)
				if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("")
			cfg, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			g := harness.Start(t, cfg)
			g.WaitReady(t, "web", 1, 20*time.Second)
			write(tc.yaml)
			var said []string
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := g.Srv.Reload(ctx, "", func(format string, args ...any) { said = append(said, fmt.Sprintf(format, args...)) }); err != nil {
				t.Fatalf("reload: %v", err)
			}
			if !slices.ContainsFunc(said, func(m string) bool {
				return strings.Contains(m, tc.key) && strings.Contains(m, "new gatehouse process")
			}) {
				t.Errorf("%s changed; reload said %q", tc.key, said)
			}
		})
	}
}
