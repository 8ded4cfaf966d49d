package procstat

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// TestMain proves that every goroutine the package's tests start has
// stopped when they end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.Cleanup(testutil.ExitRemovingBinaries)) }
