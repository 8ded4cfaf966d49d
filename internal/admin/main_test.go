package admin_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Every gatehouse a test starts is stopped by the harness, every client
// closes its idle connections and every process is reaped, so nothing may
// be left running. The parallel tests wait on processes, a browser's page
// and the live stream's update each second more than they compute: four
// run at once. Each test sets the admin token it means, or none: a
// GATEHOUSE_ADMIN_TOKEN from the environment would override it.
func TestMain(m *testing.M) {
	os.Unsetenv("GATEHOUSE_ADMIN_TOKEN")
	testutil.WaitingParallel(4)
	goleak.VerifyTestMain(m, goleak.Cleanup(testutil.ExitRemovingBinaries))
}
