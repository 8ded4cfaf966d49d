package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
)

// defaultHashCost is hash-password's bcrypt cost: 4× the work of bcrypt's
// default (10), a quarter second or so on a current core. An offline
// guesser pays it for every guess; gatehouse pays it once per client and
// process, as basic auth caches a verified password. Caddy's 14 would
// make every first request after a start wait about a second.
const defaultHashCost = 12

func newHashPasswordCmd() *cobra.Command {
	var password string
	var cost int
	c := &cobra.Command{
		Use:   "hash-password [--cost N] [--password PASSWORD]",
		Short: "Print the bcrypt hash of a password, for a basic auth user of the config",
		Long: "Read a password from stdin (its first line) and print its bcrypt hash, the value a basic\n" +
			"auth user takes in gatehouse.yaml. On a terminal it asks twice; what is typed is shown,\n" +
			"so pipe the password in where someone may look:\n\n" +
			"  printf '%s\\n' \"$PASSWORD\" | gatehouse hash-password\n\n" +
			"htpasswd -nbB USER PASSWORD makes the same kind of hash ($2y$).",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
				return &ExitError{Code: exitUsage, Err: fmt.Errorf("--cost %d: want %d to %d", cost, bcrypt.MinCost, bcrypt.MaxCost)}
			}
			pw := password
			if !c.Flags().Changed("password") {
				in := c.InOrStdin()
				var err error
				if pw, err = readPassword(in, c.ErrOrStderr(), isTerminal(in)); err != nil {
					return err
				}
			}
			if pw == "" {
				return errors.New("the password is empty")
			}
			h, err := bcrypt.GenerateFromPassword([]byte(pw), cost)
			if errors.Is(err, bcrypt.ErrPasswordTooLong) {
				return fmt.Errorf("the password is %d bytes; bcrypt takes at most 72: %w", len(pw), err)
			}
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(c.OutOrStdout(), string(h))
			return err
		},
	}
	c.Flags().StringVar(&password, "password", "", "the password, instead of stdin (visible to other users in ps and in shell history)")
	c.Flags().IntVar(&cost, "cost", defaultHashCost, "bcrypt cost, 4 to 31: each step doubles the work of a check and of a guess")
	return c
}

// isTerminal reports whether r is a terminal (a character device), where
// a person types the password.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// readPassword reads the first line of in. On a terminal it prompts on
// prompt and asks again, for a typo to show before the hash is used.
// The terminal echoes what is typed: turning that off takes
// golang.org/x/term, which gatehouse does not depend on.
func readPassword(in io.Reader, prompt io.Writer, terminal bool) (string, error) {
	br := bufio.NewReader(in)
	if terminal {
		fmt.Fprint(prompt, "Password (shown as you type it): ")
	}
	pw, err := readLine(br)
	if err != nil || !terminal {
		return pw, err
	}
	fmt.Fprint(prompt, "The same again: ")
	again, err := readLine(br)
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("the two passwords differ")
	}
	return pw, nil
}

// readLine is a line of br without its line ending; the last line may
// lack one.
func readLine(br *bufio.Reader) (string, error) {
	s, err := br.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && s != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("no password on stdin")
		}
		return "", fmt.Errorf("read the password: %w", err)
	}
	return strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r"), nil
}
