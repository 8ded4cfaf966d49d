package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/config"
)

// ExitError carries a specific exit code.
type ExitError struct {
	Code int
	Err  error
	// Quiet: nothing is printed (gatehouse exec's command said what it
	// had to say; its exit code is the message).
	Quiet bool
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exit codes.
const (
	exitFailure = 1
	// exitUsage: bad flags or a bad config.
	exitUsage = 2
)

// Main runs gatehouse with args and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *ExitError
	var ce config.Errors
	switch {
	case errors.As(err, &ce):
		// One "FILE:LINE: PATH: MESSAGE" line per problem, as editors and
		// CI annotations expect them.
		fmt.Fprintln(stderr, ce.Error())
		return exitUsage
	case errors.As(err, &ee):
		if !ee.Quiet {
			fmt.Fprintln(stderr, "gatehouse: "+err.Error())
		}
		return ee.Code
	}
	fmt.Fprintln(stderr, "gatehouse: "+err.Error())
	return exitFailure
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "gatehouse",
		Short:         "Run a web app as supervised instances behind a gateway that explains every 5xx",
		SilenceUsage:  true,
		SilenceErrors: true,
		// --version prints the same line as `gatehouse version`.
		Version: versionText(),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	// `gatehouse completion bash|zsh|fish|powershell` is cobra's; the
	// commands that name an app or instance complete it from the running
	// gatehouse (see completeApps).
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: exitUsage, Err: fmt.Errorf("%w\n%s", err, c.UsageString())}
	})
	root.AddCommand(newInitCmd(), newRunCmd(), newValidateCmd(), newSchemaCmd(), newStatusCmd(), newVersionCmd(),
		newReloadCmd(), newUpgradeCmd(),
		newDrainCmd("drain", "Take gatehouse out of its load balancer's rotation: /readyz fails, requests are still served",
			"For maintenance: /readyz answers 503, so that a load balancer or Kubernetes that follows it\n"+
				"stops sending requests here, while every request that still comes is served, and each\n"+
				"connection closes after its answer so that clients reconnect elsewhere. It lasts until\n"+
				"gatehouse undrain (or a restart). SIGTERM does the same for shutdown_delay before stopping."),
		newDrainCmd("undrain", "Put gatehouse back in rotation after a drain: /readyz passes once the apps are ready", ""), newScaleCmd(), newRestartCmd(), newDiagnoseCmd(), newLogsCmd(),
		newStopStartCmd("stop", "Take an app down without removing it: drain and stop every instance (scale to 0)"),
		newStopStartCmd("start", "Bring a stopped app back to its configured number of instances"), newExecCmd(), newDumpCmd())
	root.AddCommand(newHashPasswordCmd())
	return root
}

// configFlag is the -c flag shared by commands that read the config.
func configFlag(c *cobra.Command, dst *string) {
	c.Flags().StringVarP(dst, "config", "c", "", "config file (default ./gatehouse.yaml, else a command after --, else ./Procfile)")
}

// adminFlag is the --admin flag of commands that talk to a running
// gatehouse.
func adminFlag(c *cobra.Command, dst *string) {
	c.Flags().StringVar(dst, "admin", "", "admin address or URL (default: admin of ./gatehouse.yaml, else 127.0.0.1:9901)")
}

// printJSON is the --json output of a command that otherwise prints a
// table or report: v indented by two spaces.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// adminTarget resolves the admin address (--admin, else the config's,
// else the default) and token (GATEHOUSE_ADMIN_TOKEN, else the config's).
// cfgErr is the error of a config that is there but does not load, when
// either is still wanted from it; addr is then "" unless --admin gave it.
func adminTarget(flagAddr, cfgFile string) (addr, token string, cfgErr error) {
	addr, token = flagAddr, os.Getenv("GATEHOUSE_ADMIN_TOKEN")
	if addr != "" && token != "" {
		return addr, token, nil
	}
	cfg, err := config.Find(cfgFile, nil)
	switch {
	case err == nil:
		if addr == "" {
			addr = cfg.AdminAddr()
		}
		if token == "" {
			token = cfg.AdminToken
		}
	case errors.Is(err, config.ErrNoConfig):
		if addr == "" {
			addr = config.DefaultAdmin
		}
	default:
		return addr, token, err
	}
	return addr, token, nil
}
