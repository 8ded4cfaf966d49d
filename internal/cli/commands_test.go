package cli_test

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// `gatehouse validate` reports every problem of a bad config, one
// line each as FILE:LINE: PATH: MESSAGE, and exits 2; a good config exits 0.
func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                       string
		file                       string
		wantCode                   int
		stdoutGolden, stderrGolden string
		// wantProblems is the number of problem lines on stderr.
		wantProblems int
	}{
		{name: "bad config", file: "bad.yaml", wantCode: 2, stderrGolden: "validate_bad.stderr.golden", wantProblems: 3},
		{name: "good config", file: "good.yaml", wantCode: 0, stdoutGolden: "validate_good.stdout.golden"},
	}
	problem := regexp.MustCompile(`^bad\.yaml:\d+: apps\.web[a-z.]*: \S.*$`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := gatehouse(t, "testdata", "validate", "-c", tc.file)
			if code != tc.wantCode {
				t.Errorf("exit code = %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.wantCode, stdout, stderr)
			}
			if tc.wantProblems > 0 {
				lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
				if len(lines) != tc.wantProblems {
					t.Errorf("%d stderr lines, want exactly one per problem (%d):\n%s", len(lines), tc.wantProblems, stderr)
				}
				for _, l := range lines {
					if !problem.MatchString(l) {
						t.Errorf("stderr line %q is not FILE:LINE: PATH: MESSAGE", l)
					}
				}
			} else if stderr != "" {
				t.Errorf("stderr = %q, want nothing", stderr)
			}
			if tc.stdoutGolden != "" {
				testutil.Golden(t, filepath.Join("testdata", tc.stdoutGolden), stdout)
			}
			if tc.stderrGolden != "" {
				testutil.Golden(t, filepath.Join("testdata", tc.stderrGolden), stderr)
			}
		})
	}
}

// `gatehouse validate` warns when a command's executable is not on
// PATH, or is a path that does not exist, and still exits 0.
func TestValidateWarnsMissingExecutable(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := gatehouse(t, "testdata", "validate", "-c", "missing_exe.yaml")
	if code != 0 {
		t.Errorf("exit code = %d, want 0 (a warning is not an error)\nstderr:\n%s", code, stderr)
	}
	testutil.Golden(t, filepath.Join("testdata", "validate_missing_exe.stdout.golden"), stdout)
	testutil.Golden(t, filepath.Join("testdata", "validate_missing_exe.stderr.golden"), stderr)
}

// `gatehouse status` shows what a person needs after a kill -9 (the
// restart count) and for a rejected probe (the 403).
func TestStatusTable(t *testing.T) {
	t.Parallel()
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
			t.Parallel()
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

// --version prints what `version` prints; completion scripts are
// generated; names complete from the config when no gatehouse runs; scale
// accepts 0 on the command line.
func TestVersionCompletionScale(t *testing.T) {
	t.Parallel()
	v, _, code := gatehouse(t, "", "version")
	vf, _, codeF := gatehouse(t, "", "--version")
	if code != 0 || codeF != 0 || v != vf || !strings.HasPrefix(v, "gatehouse ") {
		t.Errorf("version = %q (exit %d), --version = %q (exit %d); want the same line", v, code, vf, codeF)
	}
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		out, stderr, code := gatehouse(t, "", "completion", sh)
		if code != 0 || !strings.Contains(out, "gatehouse") {
			t.Errorf("completion %s: exit %d, %d bytes\n%s", sh, code, len(out), stderr)
		}
	}
	closed := testutil.ClosedAddr(t)
	for _, args := range [][]string{
		{"__complete", "scale", "-c", "good.yaml", "--admin", closed, ""},
		{"__complete", "reload", "-c", "good.yaml", "--admin", closed, "w"},
		{"__complete", "logs", "-c", "good.yaml", "--admin", closed, "--app", ""},
	} {
		out, stderr, code := gatehouse(t, "testdata", args...)
		if code != 0 || !strings.HasPrefix(out, "web\n:4\n") {
			t.Errorf("gatehouse %v = %q (exit %d, %s); want web from the config", args, out, code, stderr)
		}
	}
	out, _, _ := gatehouse(t, "testdata", "__complete", "scale", "-c", "good.yaml", "--admin", closed, "web", "")
	if strings.Contains(out, "web\n") {
		t.Errorf("scale's second argument completed with app names: %q", out)
	}
	// 0 passes the command line's check and goes to gatehouse (which is
	// not running here): not a usage error.
	_, stderr, code := gatehouse(t, "testdata", "scale", "web", "0", "--admin", closed)
	if code == 2 || strings.Contains(stderr, "must be a whole number") {
		t.Errorf("scale web 0: exit %d, %s; want it sent to gatehouse", code, stderr)
	}
	for _, n := range []string{"-1", "257", "ten"} {
		if _, _, code := gatehouse(t, "testdata", "scale", "web", n, "--admin", closed); code != 2 {
			t.Errorf("scale web %s: exit %d, want 2", n, code)
		}
	}
}
