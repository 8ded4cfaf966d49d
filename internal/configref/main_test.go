package configref_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain proves that the package's tests leave no goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
