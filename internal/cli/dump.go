package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/dumps"
)

func newDumpCmd() *cobra.Command {
	var f opFlags
	var kind, output, get, rm string
	var list, allowExit bool
	c := &cobra.Command{
		Use:   "dump APP[/INSTANCE] [--kind stacks|core|heap]",
		Short: "Take a dump of an instance's process: its stacks, a core file, or a Node heap snapshot",
		Long: "Takes a dump of an instance's process while it is out of rotation: its requests are given\n" +
			"dumps.drain_timeout to finish, no new ones reach it, and it is back in rotation when the dump\n" +
			"is taken. APP alone picks the app's first ready instance; APP/N or APP/ID names one.\n\n" +
			"  --kind stacks  every thread's stack, runtime-aware: Node through its inspector, Python\n" +
			"                 through py-spy or gdb's py-bt, the JVM through jcmd, others through gdb;\n" +
			"                 a Go program's only through SIGQUIT, which ends it: add --allow-exit\n" +
			"  --kind core    a core file (gdb's gcore; the process pauses for the copy), gzipped,\n" +
			"                 with the executable's path and build id beside it\n" +
			"  --kind heap    a Node heap snapshot, loadable in Chrome DevTools (Memory tab)\n\n" +
			"Dumps are kept in data_dir/dumps within the dumps: block's cap. stacks are printed; a core\n" +
			"or heap snapshot is saved in the current directory (or -o PATH). --list shows the dumps kept,\n" +
			"--get NAME downloads one, --rm NAME removes one.",
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: f.completeFirst(true),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := f.client()
			if err != nil {
				return err
			}
			switch {
			case list:
				return listDumps(c, cl)
			case get != "":
				return saveDump(c, cl, dumps.Meta{Name: get}, output)
			case rm != "":
				if err := cl.RemoveDump(c.Context(), rm); err != nil {
					return err
				}
				fmt.Fprintf(c.OutOrStdout(), "removed %s\n", rm)
				return nil
			case len(args) == 0:
				return &ExitError{Code: exitUsage, Err: errors.New("dump: name an instance (gatehouse dump APP[/INSTANCE]), or --list, --get NAME, --rm NAME")}
			}
			// Where the dump goes is checked before the process is paused
			// for it.
			if err := checkOutput(output); err != nil {
				return &ExitError{Code: exitUsage, Err: err}
			}
			paths := targetPaths(args[0], "dump")
			m, err := cl.Dump(c.Context(), paths[0], kind, allowExit)
			if err != nil && len(paths) > 1 && isNotFound(err) {
				appErr := err
				m, err = cl.Dump(c.Context(), paths[1], kind, allowExit)
				err = neitherFound(args[0], appErr, err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(c.ErrOrStderr(), m.Summary())
			if m.Kind == "stacks" && output == "" {
				_, err := cl.DownloadDump(c.Context(), m.Name, c.OutOrStdout())
				return err
			}
			if err := saveDump(c, cl, m, output); err != nil {
				return fmt.Errorf("%w (the dump is kept as %s: gatehouse dump --get %s -o PATH)", err, m.Name, m.Name)
			}
			return nil
		},
	}
	c.Flags().StringVar(&kind, "kind", "stacks", "what to take: stacks, core or heap")
	c.Flags().BoolVar(&allowExit, "allow-exit", false, "let a dump end the process (a Go program's stacks, by SIGQUIT)")
	c.Flags().StringVarP(&output, "output", "o", "", "where to save the dump (a file, or a directory); default: the current directory")
	c.Flags().BoolVar(&list, "list", false, "list the dumps kept")
	c.Flags().StringVar(&get, "get", "", "download the dump `NAME`")
	c.Flags().StringVar(&rm, "rm", "", "remove the dump `NAME`")
	c.MarkFlagsMutuallyExclusive("list", "get", "rm")
	f.add(c)
	return c
}

// checkOutput: -o names a directory, a file that is not there yet in a
// directory that is, or - (standard output).
func checkOutput(output string) error {
	if output == "" || output == "-" {
		return nil
	}
	st, err := os.Stat(output)
	switch {
	case err == nil && st.IsDir():
		return nil
	case err == nil:
		return fmt.Errorf("dump: -o %s: the file exists (name another, or a directory)", output)
	}
	if _, err := os.Stat(filepath.Dir(output)); err != nil {
		return fmt.Errorf("dump: -o %s: %w", output, err)
	}
	return nil
}

// saveDump downloads a dump into output: a file, a directory, or the
// current directory when it is "".
func saveDump(c *cobra.Command, cl *admin.Client, m dumps.Meta, output string) error {
	if filepath.Base(m.Name) != m.Name || m.Name == "." || m.Name == ".." {
		return fmt.Errorf("dump: %q is not a dump's name", m.Name)
	}
	path := output
	if st, err := os.Stat(output); output == "" || err == nil && st.IsDir() {
		path = filepath.Join(output, m.Name)
	}
	var w io.Writer
	if path == "-" {
		w = c.OutOrStdout()
	} else {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		defer f.Close()
		w = f
	}
	n, err := cl.DownloadDump(c.Context(), m.Name, w)
	if err != nil {
		if path != "-" {
			os.Remove(path)
		}
		return err
	}
	if path != "-" {
		fmt.Fprintf(c.ErrOrStderr(), "saved %s (%d bytes)\n", path, n)
	}
	return nil
}

func listDumps(c *cobra.Command, cl *admin.Client) error {
	ds, err := cl.Dumps(c.Context())
	if err != nil {
		return err
	}
	if len(ds) == 0 {
		fmt.Fprintln(c.OutOrStdout(), "no dumps kept")
		return nil
	}
	tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tINSTANCE\tKIND\tRUNTIME\tSIZE\tPAUSED\tTAKEN\tBY")
	for _, m := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", m.Name, m.Instance, m.Kind, m.Runtime, m.Size,
			time.Duration(m.PausedMS)*time.Millisecond, m.Created.Local().Format(time.DateTime), m.By)
	}
	return tw.Flush()
}
