package cli_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Every gatehouse binary and app process a test starts is reaped, and every
// client closes its idle connections, so nothing may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.Cleanup(testutil.ExitRemovingBinaries)) }
