package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// hashPassword runs `gatehouse hash-password args…` with stdin.
func hashPassword(t *testing.T, stdin string, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append([]string{"hash-password"}, args...))
	err = root.Execute()
	return out.String(), err
}

// hash-password prints one line, a bcrypt hash of the password at the
// cost asked for, whether the password came on stdin, with or without a
// line ending, or from --password.
func TestHashPasswordPrintsAHashThatVerifies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stdin    string
		args     []string
		password string
		cost     int
	}{
		{name: "a line on stdin", stdin: "s3cret pass\n", args: []string{"--cost", "4"}, password: "s3cret pass", cost: 4},
		{name: "no line ending", stdin: "s3cret", args: []string{"--cost", "5"}, password: "s3cret", cost: 5},
		{name: "CRLF", stdin: "s3cret\r\n", args: []string{"--cost", "4"}, password: "s3cret", cost: 4},
		{name: "only the first line", stdin: "first\nsecond\n", args: []string{"--cost", "4"}, password: "first", cost: 4},
		{name: "UTF-8", stdin: "grün ☃\n", args: []string{"--cost", "4"}, password: "grün ☃", cost: 4},
		{name: "--password", stdin: "not this\n", args: []string{"--cost", "4", "--password", "from the flag"}, password: "from the flag", cost: 4},
		{name: "default cost", stdin: "s3cret\n", password: "s3cret", cost: defaultHashCost},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := hashPassword(t, tc.stdin, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			h, ok := strings.CutSuffix(out, "\n")
			if !ok || strings.Contains(h, "\n") {
				t.Fatalf("stdout %q, want one line", out)
			}
			if err := bcrypt.CompareHashAndPassword([]byte(h), []byte(tc.password)); err != nil {
				t.Errorf("the hash %q does not verify against %q: %v", h, tc.password, err)
			}
			if cost, err := bcrypt.Cost([]byte(h)); err != nil || cost != tc.cost {
				t.Errorf("the hash's cost is %d (%v), want %d", cost, err, tc.cost)
			}
		})
	}
}

// hash-password refuses what it cannot hash, a cost outside bcrypt's
// range as a usage error.
func TestHashPasswordRefusesWhatItCannotHash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		stdin     string
		args      []string
		wantUsage bool
	}{
		{name: "nothing on stdin", stdin: ""},
		{name: "an empty line", stdin: "\n"},
		{name: "empty --password", args: []string{"--password", ""}},
		{name: "longer than 72 bytes", stdin: strings.Repeat("x", 73) + "\n", args: []string{"--cost", "4"}},
		{name: "cost too low", stdin: "pw\n", args: []string{"--cost", "3"}, wantUsage: true},
		{name: "cost too high", stdin: "pw\n", args: []string{"--cost", "32"}, wantUsage: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := hashPassword(t, tc.stdin, tc.args...)
			if err == nil {
				t.Fatalf("no error; stdout %q", out)
			}
			if out != "" {
				t.Errorf("stdout %q on an error, want nothing", out)
			}
			var ee *ExitError
			if usage := errors.As(err, &ee) && ee.Code == exitUsage; usage != tc.wantUsage {
				t.Errorf("error %v: a usage error %v, want %v", err, usage, tc.wantUsage)
			}
		})
	}
}

// On a terminal the password is asked for twice, and two that differ are
// refused rather than hashed.
func TestReadPasswordOnATerminalAsksTwice(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		typed   string
		want    string
		wantErr bool
	}{
		{name: "the same twice", typed: "s3cret\ns3cret\n", want: "s3cret"},
		{name: "a typo", typed: "s3cret\ns3cert\n", wantErr: true},
		{name: "once, then the end", typed: "s3cret\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var prompts bytes.Buffer
			got, err := readPassword(strings.NewReader(tc.typed), &prompts, true)
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("readPassword = %q, %v; want %q, error %v", got, err, tc.want, tc.wantErr)
			}
			if n := strings.Count(prompts.String(), ": "); n != 2 {
				t.Errorf("prompts %q, want two", prompts.String())
			}
		})
	}
}
