//go:build race

package procstat

// raceEnabled reports whether the race detector is on: it slows the
// reader several times over, which says nothing of its cost in
// production.
const raceEnabled = true
