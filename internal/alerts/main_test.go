package alerts

import (
	"testing"

	"go.uber.org/goleak"
)

// Every manager a test runs is stopped, every notifier closed and every
// receiver server shut down, so nothing may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
