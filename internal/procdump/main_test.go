package procdump

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain proves that every goroutine a dump starts (the exit watch, the
// inspector's reader, the tools' output copies) has stopped when it ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
