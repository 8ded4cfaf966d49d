package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/config"
)

func newValidateCmd() *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "validate [-c FILE]",
		Short: "Check a config and report every problem with its line",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := config.Find(file, nil)
			if err != nil {
				return err
			}
			src := cfg.File
			if src == "" {
				src = "(built-in)"
			}
			fmt.Fprintf(c.OutOrStdout(), "%s: ok, %d app(s)\n", src, len(cfg.Apps))
			return nil
		},
	}
	configFlag(c, &file)
	return c
}
