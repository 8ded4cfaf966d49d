package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/scaffold"
)

func newInitCmd() *cobra.Command {
	var dir string
	var force bool
	c := &cobra.Command{
		Use:   "init [--dir DIR] [--force]",
		Short: "Write a gatehouse.yaml that runs the app in this directory",
		Long: "Look at the app in the directory (a Procfile's web: line, package.json, pyproject.toml or\n" +
			"requirements.txt naming FastAPI or Flask, go.mod, a Gemfile with rails or puma: the first\n" +
			"match wins) and write a commented gatehouse.yaml that runs it on the PORT gatehouse gives\n" +
			"each instance. An existing gatehouse.yaml is left alone unless --force.\n" +
			"An app it cannot place gets a template with the command to fill in, and exit code 1.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return initCmd(c.OutOrStdout(), dir, force)
		},
	}
	c.Flags().StringVar(&dir, "dir", ".", "the app's directory, where gatehouse.yaml is written")
	c.Flags().BoolVar(&force, "force", false, "overwrite an existing gatehouse.yaml")
	return c
}

func initCmd(out io.Writer, dir string, force bool) error {
	if fi, err := os.Stat(dir); err != nil {
		return &ExitError{Code: exitUsage, Err: fmt.Errorf("init: %w", err)}
	} else if !fi.IsDir() {
		return &ExitError{Code: exitUsage, Err: fmt.Errorf("init: %s is not a directory", dir)}
	}
	file := filepath.Join(dir, scaffold.ConfigFile)
	if !force {
		// Checked before detecting, so that a second init says at once
		// what it will not do; the write below still refuses a file that
		// appears in between.
		if _, err := os.Lstat(file); err == nil {
			return &ExitError{Code: exitFailure, Err: fmt.Errorf("%s exists: init does not overwrite it (--force does)", file)}
		}
	}
	plan, err := scaffold.Detect(dir)
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	if err := writeConfig(file, scaffold.Render(plan), force); err != nil {
		return err
	}
	// The next commands name the file unless they run where it is.
	config := ""
	if filepath.Clean(dir) != "." {
		config = file
	}
	if plan.Runtime == scaffold.Unknown {
		fmt.Fprintf(out, "Could not tell how to start the app in %s.\n", dir)
		for _, why := range plan.Why {
			fmt.Fprintf(out, "  %s\n", why)
		}
		fmt.Fprintf(out, "Wrote %s as a template: set apps.web.command to the command that starts the app on $PORT.\n", file)
	} else {
		fmt.Fprintf(out, "Detected %s, from %s.\n", plan.Name(), plan.Source)
		fmt.Fprintf(out, "Wrote %s: app web runs %s\n", file, plan.Command)
		for _, why := range plan.Why {
			fmt.Fprintf(out, "  %s\n", why)
		}
		for _, w := range plan.Warnings {
			fmt.Fprintf(out, "  Check: %s\n", w)
		}
	}
	fmt.Fprintln(out, "Next:")
	for _, step := range plan.Next(config) {
		fmt.Fprintf(out, "  %s\n", step)
	}
	if plan.Runtime == scaffold.Unknown {
		return &ExitError{Code: exitFailure, Err: fmt.Errorf("init: no app detected in %s; %s has a TODO for its command", dir, file)}
	}
	return nil
}

// writeConfig writes data to file: a new file, unless force, which
// replaces it whole (a temporary file renamed over it, so that a
// gatehouse reading it sees the old config or the new, never a part)
// with the permissions it had. With nothing to replace, force writes a
// new file as init does without it, within the umask.
func writeConfig(file string, data []byte, force bool) error {
	if _, err := os.Lstat(file); !force || errors.Is(err, fs.ErrNotExist) {
		f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			return &ExitError{Code: exitFailure, Err: fmt.Errorf("%s exists: init does not overwrite it (--force does)", file)}
		}
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(file)
			return fmt.Errorf("init: write %s: %w", file, err)
		}
		return nil
	}
	mode := fs.FileMode(0o644)
	if old, err := os.Stat(file); err == nil && old.Mode().IsRegular() {
		mode = old.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".gatehouse.yaml-")
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("init: write %s: %w", file, err)
	}
	return nil
}
