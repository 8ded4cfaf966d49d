package cli_test

import (
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// `gatehouse status` shows what a person needs after a kill -9 (the
// restart count) and for a rejected probe (the 403).
func TestStatusTable(t *testing.T) {
	tests := []struct {
		name string
		args []string
		// act does something to gatehouse and waits until status should
		// show it.
		act func(t *testing.T, g *harness.Gatehouse)
		// wantInstance is the row to look at; wantCols the columns it must
		// show; wantText text the output must contain.
		wantInstance string
		wantCols     map[string]string
		wantText     []string
	}{
		{
			name: "kill -9 shows a restart",
			act: func(t *testing.T, g *harness.Gatehouse) {
				g.WaitReady(t, "web", 1, 10*time.Second)
				pid := g.Instances("web")[0].PID
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				testutil.WaitFor(t, 10*time.Second, "web-1 ready again after kill -9", func() bool {
					in := g.Instances("web")
					return len(in) == 1 && in[0].State == "ready" && in[0].PID != pid && in[0].Restarts == 1
				})
			},
			wantInstance: "web-1",
			wantCols:     map[string]string{"STATE": "ready", "RESTARTS": "1"},
		},
		{
			name: "403 probe is shown",
			args: []string{"-health-status", "403"},
			act: func(t *testing.T, g *harness.Gatehouse) {
				testutil.WaitFor(t, 5*time.Second, "a probe answered 403", func() bool {
					in := g.Instances("web")
					return len(in) == 1 && strings.Contains(in[0].Health, "403")
				})
			},
			wantInstance: "web-1",
			wantCols:     map[string]string{"STATE": "starting", "RESTARTS": "0"},
			wantText:     []string{"403 Forbidden from GET /healthz"},
		},
		{
			name: "gatehouse drain is shown",
			act: func(t *testing.T, g *harness.Gatehouse) {
				g.WaitReady(t, "web", 1, 10*time.Second)
				if out, errOut, code := gatehouse(t, "", "drain", "--admin", g.AdminURL); code != 0 || !strings.Contains(out, "draining") {
					t.Fatalf("gatehouse drain: exit %d\n%s%s", code, out, errOut)
				}
			},
			wantInstance: "web-1",
			wantCols:     map[string]string{"STATE": "ready"},
			wantText:     []string{"gatehouse is draining"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _ := harness.FaultApp(t, 1, tc.args...)
			g := harness.Start(t, cfg)
			tc.act(t, g)

			stdout, stderr, code := gatehouse(t, "", "status", "--admin", g.AdminURL)
			if code != 0 {
				t.Fatalf("gatehouse status exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			row := tableRow(t, stdout, tc.wantInstance)
			for col, want := range tc.wantCols {
				if got := row[col]; got != want {
					t.Errorf("column %s of %s = %q, want %q\n%s", col, tc.wantInstance, got, want, stdout)
				}
			}
			if pid := strconv.Itoa(g.Instances("web")[0].PID); row["PID"] != pid {
				t.Errorf("PID column = %q, want %s", row["PID"], pid)
			}
			for _, s := range tc.wantText {
				if !strings.Contains(stdout, s) {
					t.Errorf("status output lacks %q:\n%s", s, stdout)
				}
			}
		})
	}
}

// tableRow finds the row of instance id in status's table and returns its
// columns by header name. Columns are aligned, so a cell starts where its
// header does; HEALTH holds spaces, so cells are cut by header position.
func tableRow(t *testing.T, out, id string) map[string]string {
	t.Helper()
	lines := strings.Split(out, "\n")
	header := lines[0]
	names := strings.Fields(header)
	if len(names) == 0 || names[0] != "APP" {
		t.Fatalf("no table header in status output:\n%s", out)
	}
	starts := make([]int, len(names))
	for i, n := range names {
		starts[i] = strings.Index(header, n)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 2 || f[1] != id {
			continue
		}
		row := map[string]string{}
		for i, n := range names {
			end := len(l)
			if i+1 < len(starts) && starts[i+1] < end {
				end = starts[i+1]
			}
			if starts[i] < len(l) {
				row[n] = strings.TrimSpace(l[starts[i]:end])
			}
		}
		return row
	}
	t.Fatalf("no row for %s in status output:\n%s", id, out)
	return nil
}
