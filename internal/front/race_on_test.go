//go:build race

package front

// raceEnabled: under -race goroutine stacks are larger and sync.Pool
// drops items on purpose, so memory budgets do not hold.
const raceEnabled = true
