package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/process"
)

func newValidateCmd() *cobra.Command {
	var file string
	c := &cobra.Command{
		Use:   "validate [-c FILE]",
		Short: "Check a config and report every problem with its line",
		Long: "Check a config and report every problem with its line (exit code 2), including what\n" +
			"gatehouse run would refuse to start on here: tls: files that cannot be read or do not go\n" +
			"together, a static root that is not a directory, an admin address off loopback without\n" +
			"a token.\n" +
			"A command whose executable is not on PATH is a warning: it does not change the exit code.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := findConfig(file, nil)
			if err != nil {
				return err
			}
			if err := cfg.Preflight(); err != nil {
				return err
			}
			src := cfg.File
			if src == "" {
				src = "(built-in)"
			}
			warnMissingExecutables(c.ErrOrStderr(), cfg, file)
			fmt.Fprintf(c.OutOrStdout(), "%s: ok, %d app(s)\n", src, len(cfg.Apps))
			return nil
		},
	}
	configFlag(c, &file)
	return c
}

// findConfig is config.Find for validate and run: a config that cannot
// be found or read is a bad config (exit 2), as one with mistakes in it
// is.
func findConfig(file string, argv []string) (*config.Config, error) {
	cfg, err := config.Find(file, argv)
	var ce config.Errors
	if err != nil && !errors.As(err, &ce) {
		return nil, &ExitError{Code: exitUsage, Err: err}
	}
	return cfg, err
}

// warnMissingExecutables warns, one line per app, when the executable an
// app's command starts cannot be found: not on PATH (the app's env PATH
// when it sets one), or a path that does not exist relative to its dir.
// name is the config file as the user wrote it, for the messages.
func warnMissingExecutables(w io.Writer, cfg *config.Config, name string) {
	if name == "" {
		name = cfg.File
	}
	for _, app := range cfg.Order {
		a := cfg.Apps[app]
		if a == nil || a.External() || len(a.Command) == 0 {
			continue
		}
		exe := executable(a.Command)
		if exe == "" {
			continue
		}
		path := os.Getenv("PATH")
		if p, ok := a.Env["PATH"]; ok {
			path = p
		}
		if found(exe, a.Dir, path) {
			continue
		}
		where := name
		if n := commandLine(cfg.File, app); n > 0 && where != "" {
			where = fmt.Sprintf("%s:%d", where, n)
		}
		if where != "" {
			where += ": "
		}
		msg := fmt.Sprintf("executable %q not found on PATH", exe)
		if strings.Contains(exe, "/") {
			msg = fmt.Sprintf("executable %q does not exist", exe)
		}
		fmt.Fprintf(w, "%swarning: apps.%s.command: %s\n", where, app, msg)
	}
}

// shellWord is a plain word of a shell command: no quoting, expansion or
// operator that would make its meaning depend on the shell.
var shellWord = regexp.MustCompile(`^[A-Za-z0-9_./+-]+$`)

// shellBuiltins are words a sh -c script may start with that are not
// executables to look for.
var shellBuiltins = map[string]bool{
	"cd": true, ".": true, "source": true, "export": true, "set": true, "if": true, "for": true,
	"while": true, "case": true, "test": true, "[": true, "eval": true, "trap": true, "ulimit": true,
	"umask": true, "true": true, "false": true, "echo": true, "printf": true, "read": true, "{": true, "(": true,
}

// executable is the program argv runs; for a shell command (sh -c
// SCRIPT) it is the script's first plain word after exec and VAR=value
// assignments, or "" when that is not a plain word or is a builtin.
func executable(argv config.Command) string {
	argv = process.CommandArgv(argv) // a one-argument command line is a shell command
	if len(argv) == 3 && argv[0] == "sh" && argv[1] == "-c" {
		for _, word := range strings.Fields(argv[2]) {
			switch {
			case word == "exec":
				continue
			case strings.Contains(word, "=") && !strings.HasPrefix(word, "="):
				continue
			case shellBuiltins[word] || !shellWord.MatchString(word):
				return ""
			}
			return word
		}
		return ""
	}
	return argv[0]
}

// found reports whether exe names an executable: a path (relative to dir)
// that exists, or a name on path.
func found(exe, dir, path string) bool {
	if strings.Contains(exe, "/") {
		if !filepath.IsAbs(exe) && dir != "" {
			exe = filepath.Join(dir, exe)
		}
		_, err := os.Stat(exe)
		return err == nil
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, exe)
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}

// commandLine is the line of app's command: key in file, 0 when it cannot
// tell (a best effort for the warning; errors carry exact positions).
func commandLine(file, app string) int {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	appKey := regexp.MustCompile(`^\s+` + regexp.QuoteMeta(app) + `:\s*(#.*)?$`)
	sc := bufio.NewScanner(f)
	inApp := false
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case appKey.MatchString(line):
			inApp = true
		case inApp && strings.HasPrefix(strings.TrimSpace(line), "command:"):
			return n
		}
	}
	return 0
}
