package supervisor_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
)

// A reload the app refuses (a switch between command and upstreams,
// which takes a restart) or that fails (the new command does not start)
// leaves every setting as it was: the hold queue's bound and the
// instance count the file is taken to ask for too, not only the config
// the instances run with.
func TestRefusedOrFailedReloadChangesNoSetting(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*config.App)
	}{
		{"command to upstreams", func(c *config.App) { c.Command, c.Upstreams = nil, []string{"127.0.0.1:1"} }},
		{"command that cannot start", func(c *config.App) { c.Command = config.Command{"/nonexistent/gatehouse-test-no-such-binary"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := startWeb(t, 1, nil)
			a := webApp(t, g)
			prev := a.Config()
			type settings struct{ Queue, Configured, Instances int }
			read := func() settings {
				return settings{Queue: a.Pool().MaxQueue(), Configured: a.Configured(), Instances: a.Config().Instances}
			}
			before := read()

			next := *prev
			tc.edit(&next)
			next.QueueSize = prev.QueueSize + 7
			next.Instances = prev.Instances + 1
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := a.Reload(ctx, &next, progress(t)); err == nil {
				t.Fatal("reload succeeded; want it refused or failed")
			}
			if diff := cmp.Diff(before, read()); diff != "" {
				t.Errorf("the reload changed the app (-before +after):\n%s", diff)
			}
			if a.Config() != prev {
				t.Errorf("the reload left the app on a config other than its previous one")
			}
		})
	}
}
