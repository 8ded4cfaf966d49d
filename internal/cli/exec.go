package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
)

func newExecCmd() *cobra.Command {
	var f opFlags
	c := &cobra.Command{
		Use:   "exec APP[/INSTANCE] -- CMD [ARG...]",
		Short: "Run a command in an instance's world: its environment, directory and user (as kubectl exec)",
		Long: "Runs CMD (no shell: write sh -c '…' for one) beside an instance, with the environment its\n" +
			"process has (gatehouse's, the app's env:, its PORT and identity), its working directory and its\n" +
			"user. APP alone picks the app's first ready instance; APP/N or APP/ID names one (web/2, web/web-2).\n" +
			"stdin, stdout and stderr stream both ways while it runs; the exit code is the command's (a signal:\n" +
			"128+N, as a shell says it; 127 for a program not found). Ctrl-C, or the connection closing, kills\n" +
			"the command and what it started. Every run is an exec and an exec_exited event.",
		Args:              cobra.MinimumNArgs(2),
		ValidArgsFunction: f.completeFirst(true),
		RunE: func(c *cobra.Command, args []string) error {
			// Flags stop at the target (the command's are its own), so a
			// -- after it is still among the arguments.
			argv := args[1:]
			if argv[0] == "--" {
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return &ExitError{Code: exitUsage, Err: errors.New("exec: no command after the target (gatehouse exec APP -- CMD [ARG...])")}
			}
			paths := targetPaths(args[0], "exec")
			cl, err := f.client()
			if err != nil {
				return err
			}
			// Ctrl-C (and a hangup or TERM) ends the command through the
			// connection's close; the exit code says which signal, as a
			// shell's would.
			ctx, cancel := context.WithCancel(c.Context())
			defer cancel()
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer signal.Stop(sigs)
			got := make(chan syscall.Signal, 1)
			watched := make(chan struct{})
			defer func() { cancel(); <-watched }()
			go func() {
				defer close(watched)
				select {
				case s := <-sigs:
					got <- s.(syscall.Signal)
					cancel()
				case <-ctx.Done():
				}
			}()
			code, err := cl.Exec(ctx, paths[0], argv, c.InOrStdin(), c.OutOrStdout(), c.ErrOrStderr())
			if err != nil && len(paths) > 1 && isNotFound(err) {
				appErr := err
				code, err = cl.Exec(ctx, paths[1], argv, c.InOrStdin(), c.OutOrStdout(), c.ErrOrStderr())
				err = neitherFound(args[0], appErr, err)
			}
			cancel()
			select {
			case s := <-got:
				return &ExitError{Code: 128 + int(s), Quiet: true, Err: fmt.Errorf("exec: %v", s)}
			default:
			}
			var nr *admin.ExecNotRunError
			switch {
			case errors.As(err, &nr):
				return &ExitError{Code: nr.Code, Err: err}
			case err != nil:
				return err
			case code != 0:
				return &ExitError{Code: code, Quiet: true, Err: fmt.Errorf("exec: exit code %d", code)}
			}
			return nil
		},
	}
	// Everything after the target is the command's, its flags too.
	c.Flags().SetInterspersed(false)
	f.add(c)
	return c
}

// targetPaths are the admin API paths of verb (exec, dump) on the
// instance target names, in the order to try: APP/N and APP/ID an
// instance; a bare name an app, else an instance of that id (as restart
// takes it).
func targetPaths(target, verb string) []string {
	app, inst, ok := strings.Cut(target, "/")
	if !ok {
		return []string{"/api/apps/" + url.PathEscape(app) + "/" + verb, "/api/instances/" + url.PathEscape(app) + "/" + verb}
	}
	if !strings.HasPrefix(inst, app+"-") {
		inst = app + "-" + inst
	}
	return []string{"/api/instances/" + url.PathEscape(inst) + "/" + verb}
}
