//go:build race

package upstream

// raceEnabled: a test that looks at a connection beside the goroutine
// that uses it cannot run under -race.
const raceEnabled = true
