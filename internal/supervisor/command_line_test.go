package supervisor_test

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// A whole command line with $PORT in one argument (gatehouse run --
// 'BIN --listen-port $PORT'), or as a config's command string, starts the
// app with its PORT expanded, and the app serves through gatehouse. The
// fault app's -listen-port takes a number: an unexpanded "$PORT", or the
// whole line taken for a program's path, never serves.
func TestCommandLineWithPORTServes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		command func(line string) config.Command
	}{
		{"one argument (run -- 'CMD')", func(line string) config.Command { return config.Command{line} }},
		{"config string (command: \"CMD\")", config.ShellCommand},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, app := harness.FaultApp(t, 1)
			tune(app)
			app.Command = tc.command(app.Command[0] + " -listen-port $PORT")
			g := harness.Start(t, cfg)
			g.WaitReady(t, "web", 1, 15*time.Second)
			c := harness.Client(10 * time.Second)
			defer c.CloseIdleConnections()
			resp, err := c.Get(g.URL + "/")
			if err != nil {
				t.Fatalf("GET /: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET / through gatehouse: %d %s; want 200", resp.StatusCode, body)
			}
			for _, e := range g.Events(telemetry.EventExit, telemetry.EventRestart, telemetry.EventPortMismatch) {
				t.Errorf("unexpected %s event: %s", e.Type, e.Detail)
			}
		})
	}
}
