package testutil

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain proves that every goroutine the package's tests start has
// stopped when they end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.Cleanup(ExitRemovingBinaries)) }
