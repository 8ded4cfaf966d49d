package h2_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Every connection a test serves is closed and its ServeConn waited
// for, every client is closed and every handler released, so nothing
// may be left running. The tests mostly wait on sockets and timeouts:
// four run at once.
func TestMain(m *testing.M) {
	testutil.WaitingParallel(4)
	goleak.VerifyTestMain(m)
}
