package cli_test

import (
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// `gatehouse validate` warns when a command's executable is not on
// PATH, or is a path that does not exist, and still exits 0.
func TestValidateWarnsMissingExecutable(t *testing.T) {
	stdout, stderr, code := gatehouse(t, "testdata", "validate", "-c", "missing_exe.yaml")
	if code != 0 {
		t.Errorf("exit code = %d, want 0 (a warning is not an error)\nstderr:\n%s", code, stderr)
	}
	testutil.Golden(t, filepath.Join("testdata", "validate_missing_exe.stdout.golden"), stdout)
	testutil.Golden(t, filepath.Join("testdata", "validate_missing_exe.stderr.golden"), stderr)
}
