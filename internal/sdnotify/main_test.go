package sdnotify_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every watchdog a test starts stops with its context.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
