package cli

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// A log stream nothing comes from, not even the heartbeat gatehouse
// sends when it has nothing else, is a connection lost without a word
// (the host gone, a network that dropped it): logs -f ends with an
// error rather than waiting for good. A stream that only beats is alive.
func TestFollowEndsOnAStreamThatFellSilent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		beats int // heartbeats sent, 50ms apart, before the end event
		end   bool
		want  error
	}{
		{"silent from the start", 0, false, errStreamSilent},
		{"silent after beating", 10, false, errStreamSilent},
		{"beating longer than the silence allowed, then ending", 30, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const silence = time.Second
			pr, pw := io.Pipe()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				// The server's side: it stops when the stream is closed
				// or the test ends.
				beat := time.NewTicker(50 * time.Millisecond)
				defer beat.Stop()
				for range tc.beats {
					select {
					case <-ctx.Done():
						return
					case <-beat.C:
					}
					if _, err := io.WriteString(pw, ": heartbeat\n\n"); err != nil {
						return
					}
				}
				if tc.end {
					io.WriteString(pw, "event: end\ndata: {}\n\n")
					pw.Close()
				}
			}()
			done := make(chan error, 1)
			go func() {
				var out bytes.Buffer
				done <- follow(ctx, nil, logsFlags{}, pr, &out, newPrinted(nil, 0), silence)
			}()
			select {
			case err := <-done:
				if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
					t.Errorf("follow = %v, want %v", err, tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("follow still waits 30s on a stream that fell silent")
			}
		})
	}
}
