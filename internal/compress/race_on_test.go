//go:build race

package compress

// raceEnabled: the race detector makes sync.Pool drop a share of what is
// put in it on purpose, so pool-reuse assertions do not hold under it.
const raceEnabled = true
