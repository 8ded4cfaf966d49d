package cli

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/schema"
)

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print gatehouse.yaml's JSON Schema, for an editor to check a config as it is written",
		Long: "Print the JSON Schema (draft 2020-12) of gatehouse.yaml that this binary knows: every key\n" +
			"with its description and default, and no key besides. Save it beside the config and name it\n" +
			"in the config's first line for yaml-language-server (VS Code, Neovim, Helix, …):\n\n" +
			"  gatehouse schema > gatehouse.schema.json\n" +
			"  # yaml-language-server: $schema=gatehouse.schema.json\n\n" +
			"docs/config.md in gatehouse's repository is the same reference as text.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := io.WriteString(c.OutOrStdout(), schema.JSON())
			return err
		},
	}
}
