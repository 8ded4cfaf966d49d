package autoscale_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every gatehouse a test starts is stopped by the harness (which waits for
// the scales under way), every client closes its idle connections and
// every process is reaped, so nothing may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
