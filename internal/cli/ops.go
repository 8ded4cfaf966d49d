package cli

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/config"
)

// opFlags are the flags shared by commands that start an operation.
type opFlags struct{ file, admin string }

func (f *opFlags) add(c *cobra.Command) {
	configFlag(c, &f.file)
	adminFlag(c, &f.admin)
}

// client is an admin client for the target the flags name. A config that
// does not load is reported, as validate reports it, rather than a guess
// at the address or the admin API's "token required" that would hide the
// mistake in the file: at once when the address was to come from it, else
// when the request fails for want of what it would have given (see
// admin.Client.ConfigErr).
func (f *opFlags) client() (*admin.Client, error) {
	addr, token, cfgErr := adminTarget(f.admin, f.file)
	if cfgErr != nil && addr == "" {
		return nil, cfgErr
	}
	cl := admin.NewClient(addr, token)
	cl.ConfigErr = cfgErr
	return cl, nil
}

// runOp posts an operation and prints its progress as it happens.
func (f *opFlags) runOp(c *cobra.Command, path string) error {
	cl, err := f.client()
	if err != nil {
		return err
	}
	start := time.Now()
	out := c.OutOrStdout()
	err = cl.Op(c.Context(), path, func(line string) {
		fmt.Fprintf(out, "%6.1fs  %s\n", time.Since(start).Seconds(), line)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%6.1fs  done\n", time.Since(start).Seconds())
	return nil
}

func newReloadCmd() *cobra.Command {
	var f opFlags
	c := &cobra.Command{
		Use:   "reload [APP]",
		Short: "Re-read the config and replace instances one by one, with zero downtime",
		Long: "Re-reads the config file. Probe and timeout changes apply at once; a new command, dir or env\n" +
			"replaces each instance: the replacement is ready before the old one drains. If a replacement\n" +
			"never gets ready, the reload stops, the old instances keep serving, and the exit code is 1.",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: f.completeFirst(false),
		RunE: func(c *cobra.Command, args []string) error {
			path := "/api/reload"
			if len(args) == 1 {
				path = "/api/apps/" + url.PathEscape(args[0]) + "/reload"
			}
			return f.runOp(c, path)
		},
	}
	f.add(c)
	return c
}

func newUpgradeCmd() *cobra.Command {
	var f opFlags
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "upgrade",
		Short: "Replace the running gatehouse with the binary now at its path, keeping connections and apps",
		Long: "Starts the gatehouse executable at the running one's path (read afresh, so a new version\n" +
			"installed there) with the same arguments. It gets the listening sockets and adopts the running\n" +
			"app instances without restarting them; once it serves, the old process finishes its requests\n" +
			"and exits. If the new one fails to start or is not ready in time, the old one serves on and the\n" +
			"exit code is 1, with the reason. SIGUSR2 to gatehouse does the same.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, args []string) error {
			path := "/api/upgrade"
			if timeout > 0 {
				path += "?timeout=" + url.QueryEscape(timeout.String())
			}
			return f.runOp(c, path)
		},
	}
	f.add(c)
	c.Flags().DurationVar(&timeout, "timeout", 0, "how long the new gatehouse has to adopt the instances and serve (default 60s)")
	return c
}

func newScaleCmd() *cobra.Command {
	var f opFlags
	c := &cobra.Command{
		Use:   "scale APP N",
		Short: "Set an app's number of instances, live (drain-first when going down)",
		Long: "Set an app's number of instances, live: new instances are ready before they take requests,\n" +
			"removed ones are drained first. N is a whole number from 0 to 256; 0 takes the app down and keeps it\n" +
			"(as `gatehouse stop APP`; `gatehouse start APP` brings back its configured instances).",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: f.completeFirst(false),
		RunE: func(c *cobra.Command, args []string) error {
			n, err := strconv.Atoi(args[1])
			if err != nil || n < 0 || n > config.MaxInstances {
				return &ExitError{Code: exitUsage, Err: fmt.Errorf("scale: N must be a whole number from 0 to %d, got %q", config.MaxInstances, args[1])}
			}
			return f.runOp(c, "/api/apps/"+url.PathEscape(args[0])+"/scale?instances="+strconv.Itoa(n))
		},
	}
	f.add(c)
	return c
}

// newStopStartCmd is `stop APP` (scale to 0, drain first) or `start APP`
// (back to the configured instances).
func newStopStartCmd(verb, short string) *cobra.Command {
	var f opFlags
	c := &cobra.Command{
		Use:               verb + " APP",
		Short:             short,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeFirst(false),
		RunE: func(c *cobra.Command, args []string) error {
			return f.runOp(c, "/api/apps/"+url.PathEscape(args[0])+"/"+verb)
		},
	}
	f.add(c)
	return c
}

func newRestartCmd() *cobra.Command {
	var f opFlags
	c := &cobra.Command{
		Use:               "restart APP|INSTANCE",
		Short:             "Restart an app's instances, or one instance, at once (hard: no draining)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeFirst(true),
		RunE: func(c *cobra.Command, args []string) error {
			target := url.PathEscape(args[0])
			err := f.runOp(c, "/api/apps/"+target+"/restart")
			if err != nil && isNotFound(err) {
				return neitherFound(args[0], err, f.runOp(c, "/api/instances/"+target+"/restart"))
			}
			return err
		},
	}
	f.add(c)
	return c
}

// neitherFound is the error of a name tried as an app (appErr, not
// found) and then as an instance: when neither is there, it says so with
// the app's answer, which names the apps there are, rather than the
// instance's alone, which says nothing of the app that was likely meant.
func neitherFound(name string, appErr, instErr error) error {
	if instErr == nil || !isNotFound(instErr) {
		return instErr
	}
	return &admin.HTTPError{Status: http.StatusNotFound, Message: fmt.Sprintf("no app or instance %q: %v", name, appErr)}
}

// isNotFound: the admin API has no app of that name (the route exists,
// so a 404 from it can mean nothing else).
func isNotFound(err error) bool {
	var he *admin.HTTPError
	return errors.As(err, &he) && he.Status == http.StatusNotFound
}

// newDrainCmd is `drain` (out of the load balancer's rotation, for
// maintenance) or `undrain` (back in).
func newDrainCmd(verb, short, long string) *cobra.Command {
	var f opFlags
	c := &cobra.Command{
		Use:   verb,
		Short: short,
		Long:  long,
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, args []string) error { return f.runOp(c, "/api/"+verb) },
	}
	f.add(c)
	return c
}
