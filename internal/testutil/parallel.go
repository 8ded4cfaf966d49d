package testutil

import (
	"flag"
	"strconv"
)

// WaitingParallel lets n parallel tests run at once unless -parallel was
// given. Call it from TestMain before m.Run, in a package whose tests
// spend their time waiting for a server's own timeouts on loopback
// rather than computing: -parallel defaults to GOMAXPROCS, which on a
// small machine would run such tests nearly one at a time.
func WaitingParallel(n int) {
	if !flag.Parsed() {
		flag.Parse()
	}
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", strconv.Itoa(n))
	}
}
