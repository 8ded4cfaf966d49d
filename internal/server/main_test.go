package server_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/acmetest"
)

// Every gatehouse a test starts is stopped by the harness, every client
// closes its idle connections and every process is reaped, so nothing may
// be left running. The parallel tests wait on processes, probes and
// timers more than they compute: six run at once.
func TestMain(m *testing.M) {
	testutil.WaitingParallel(6)
	goleak.VerifyTestMain(m, append(acmetest.IgnoreGoroutines, goleak.Cleanup(testutil.ExitRemovingBinaries))...)
}
