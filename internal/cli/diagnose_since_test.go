package cli_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gatehouse/gatehouse/internal/cli"
)

// diagnose --since is how far back to look: a window of none, or a
// negative one (an hour to come), would hold no evidence and report
// nothing wrong, live or offline. It is a usage error, as logs --since
// of a negative duration is, before anything is asked of gatehouse.
func TestDiagnoseRefusesAWindowOfNone(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // no gatehouse.yaml
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"live, negative", []string{"diagnose", "--since", "-1h", "--admin", "127.0.0.1:1"}},
		{"live, zero", []string{"diagnose", "--since", "0s", "--admin", "127.0.0.1:1"}},
		{"offline, negative", []string{"diagnose", "--since", "-1h", "--data-dir", dir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := cli.Main(tc.args, &stdout, &stderr); code != 2 {
				t.Errorf("%s exited %d, want 2; stdout %q, stderr %q", strings.Join(tc.args, " "), code, stdout.String(), stderr.String())
			}
			if want := "--since must be a positive duration"; !strings.Contains(stderr.String(), want) {
				t.Errorf("%s said %q, want it to say %q", strings.Join(tc.args, " "), stderr.String(), want)
			}
		})
	}
}
