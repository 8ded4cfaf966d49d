package cli_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// `gatehouse validate` reports every problem of a bad config, one
// line each as FILE:LINE: PATH: MESSAGE, and exits 2; a good config exits 0.
func TestValidate(t *testing.T) {
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
