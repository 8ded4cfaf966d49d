package diagnose_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// A command whose program does not exist, or may not be executed, or
// whose directory cannot be entered, fails the same way however often it
// is started: gatehouse starts it once, does not restart it, answers held
// requests 503 at once (not after hold_timeout) saying which path and why,
// and diagnose names it.
func TestCommandThatCannotRunFailsOnceAndAtOnce(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "app.py")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "bin", "python3")
	gone := filepath.Join(dir, "gone")
	for _, tc := range []struct {
		name    string
		command config.Command // nil: the test app's
		dir     string
		path    string
		why     string
		finding string
	}{
		{"missing, one argument with $PORT", config.Command{missing + " -m uvicorn main:app --port $PORT"}, "", missing, "no such file or directory (ENOENT)", "command_not_executable"},
		{"not executable", config.Command{plain}, "", plain, "permission denied, not a file with execute permission (EACCES)", "command_not_executable"},
		{"dir missing", nil, gone, gone, "no such file or directory (ENOENT)", "app_dir_unusable"},
		{"dir is a file", nil, plain, plain, "not a directory (ENOTDIR)", "app_dir_unusable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, since := start(t, 1, func(_ *config.Config, a *config.App) {
				if tc.command != nil {
					a.Command = tc.command
				}
				if tc.dir != "" {
					a.Dir = tc.dir
				}
				a.HoldTimeout = config.Duration(30 * time.Second)
			})
			c := client(t, 20*time.Second)
			begin := time.Now()
			resp, err := c.Get(g.URL + "/")
			if err != nil {
				// Not fatal: what follows says how the old way fails too.
				t.Errorf("GET /: %v after %v; want a 503 at once", err, time.Since(begin))
			} else {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if took := time.Since(begin); resp.StatusCode != http.StatusServiceUnavailable || took > 10*time.Second {
					t.Errorf("GET /: %d after %v; want 503 at once, not after hold_timeout 30s", resp.StatusCode, took)
				}
				if !strings.Contains(string(body), tc.path) || !strings.Contains(string(body), tc.why) {
					t.Errorf("503 body %q; want it to name %s and say %q", body, tc.path, tc.why)
				}
			}
			exits := waitEvents(t, g, 5*time.Second, telemetry.EventExit, 1)
			if !strings.Contains(exits[0].Detail, tc.path) || !strings.Contains(exits[0].Detail, tc.why) || !strings.Contains(exits[0].Detail, "not restarted") {
				t.Errorf("exit event %q; want the path, %q and that it is not restarted", exits[0].Detail, tc.why)
			}
			// A restart loop starts again at once, then after 1s and 2s:
			// three seconds would see two attempts more.
			<-time.After(3 * time.Second)
			if n := len(g.Events(telemetry.EventExit)); n != 1 {
				t.Errorf("%d failed starts within 3s; want 1", n)
			}
			for _, e := range g.Events(telemetry.EventRestart, telemetry.EventStart) {
				t.Errorf("unexpected %s event: %s", e.Type, e.Detail)
			}
			if st := g.Instances("web"); len(st) != 1 || st[0].State != "crashed" {
				t.Errorf("instances %+v; want one, crashed", st)
			}
			f := expectFirst(t, g, since, tc.finding, tc.path, tc.why)
			if f.RequestsAffected < 1 {
				t.Errorf("%s counts %d requests affected; want >= 1", tc.finding, f.RequestsAffected)
			}
		})
	}
}
