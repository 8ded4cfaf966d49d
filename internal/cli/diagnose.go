package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/diagnose"
)

func newDiagnoseCmd() *cobra.Command {
	var f opFlags
	var since time.Duration
	var asJSON bool
	var dataDir string
	c := &cobra.Command{
		Use:   "diagnose [--since DURATION] [--json] [--admin URL | --data-dir DIR]",
		Short: "Name the root cause of 5xx errors, with evidence and the fix",
		Long: "Runs detectors over the events, the access log and the state of every instance.\n" +
			"Live through the admin API by default; with --data-dir, offline over a data dir\n" +
			"(also after gatehouse stopped, or on a copy sent with a bug report).",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			// A window of none, or one that ends before it begins, has no
			// evidence: its report would read as nothing being wrong.
			if since <= 0 {
				return &ExitError{Code: exitUsage, Err: fmt.Errorf("diagnose: --since must be a positive duration, got %s", since)}
			}
			rep, err := runDiagnose(c, f, dataDir, since)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.OutOrStdout(), rep)
			}
			diagnose.Render(c.OutOrStdout(), rep)
			return nil
		},
	}
	f.add(c)
	c.Flags().DurationVar(&since, "since", time.Hour, "how far back to look (with --data-dir, back from when that gatehouse last ran)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().StringVar(&dataDir, "data-dir", "", "diagnose offline from this data dir instead of asking a running gatehouse")
	return c
}

// runDiagnose diagnoses the last window: offline, the window that ends
// when the data dir's gatehouse last ran, which may have stopped long
// ago; live, the window that ends now.
func runDiagnose(c *cobra.Command, f opFlags, dataDir string, window time.Duration) (diagnose.Report, error) {
	if dataDir != "" {
		ev, err := diagnose.LoadWindow(dataDir, window)
		if err != nil {
			return diagnose.Report{}, err
		}
		return diagnose.Run(ev), nil
	}
	var rep diagnose.Report
	cl, err := f.client()
	if err != nil {
		return rep, err
	}
	since := time.Now().Add(-window)
	if err := cl.GetJSON(c.Context(), "/api/diagnose?since="+since.UTC().Format(time.RFC3339Nano), &rep); err != nil {
		return rep, fmt.Errorf("%w (to diagnose without a running gatehouse, use --data-dir)", err)
	}
	return rep, nil
}
