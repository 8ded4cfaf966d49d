//go:build race

package gateway_test

// raceEnabled: the race detector slows the request path several times;
// load tests send fewer requests under it (their full count runs in the
// plain test run).
const raceEnabled = true
