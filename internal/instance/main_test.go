package instance

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, goleak.Cleanup(testutil.ExitRemovingBinaries)) }
