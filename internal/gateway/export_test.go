package gateway

import "time"

// SetExitWindow has after start the window in which an access entry
// waits for its instance's exit, where time.AfterFunc would: a test
// then says when the window ends, or that it never does.
func SetExitWindow(g *Gateway, after func(d time.Duration, end func()) (stop func() bool)) {
	g.late.after = after
}

// SetProcessLives has lives say whether a member's process runs on, where
// /proc would: for members with a made-up pid.
func SetProcessLives(g *Gateway, lives func(pid int) bool) { g.late.lives = lives }

// ExitNoteWait is how long an access entry waits for its instance's exit.
const ExitNoteWait = exitNoteWait

// SetExitWait sets how long a request waits to learn of an instance's
// exit (exitWait): long, for a test whose exits come late on purpose.
func SetExitWait(g *Gateway, d time.Duration) {
	for _, a := range g.apps {
		a.exitWait = d
	}
}
