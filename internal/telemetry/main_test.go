package telemetry

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any goroutine (AsyncWriter.run, timberjack's
// mill) outlives the tests: every writer must be stopped by Close.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
