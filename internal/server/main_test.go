package server_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/testutil/acmetest"
)

// Every gatehouse a test starts is stopped by the harness, every client
// closes its idle connections and every process is reaped, so nothing may
// be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, acmetest.IgnoreGoroutines...) }
