package auth

import (
	"testing"

	"go.uber.org/goleak"
)

// Every client closes its idle connections to the auth services the tests
// start, so nothing may be left running.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
