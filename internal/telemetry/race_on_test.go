//go:build race

package telemetry

// raceEnabled skips allocation assertions: under -race sync.Pool drops items
// on purpose, so pooled code allocates.
const raceEnabled = true
