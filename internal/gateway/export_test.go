package gateway

import "time"

// SetExitWindow has after start the window in which an access entry
// waits for its instance's exit, where time.AfterFunc would: a test
// then says when the window ends, or that it never does.
func SetExitWindow(g *Gateway, after func(d time.Duration, end func()) (stop func() bool)) {
	g.late.after = after
}

// ExitNoteWait is how long an access entry waits for its instance's exit.
const ExitNoteWait = exitNoteWait
