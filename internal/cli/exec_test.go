package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// execFixture runs gatehouse with web's one instance, GREETING in its
// env:, and waits for it to be ready.
func execFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t)
	f.writeApps(t, f.webApp(1, map[string]string{"GREETING": "hello"}, "1s", "2s"))
	f.run(t)
	waitReady(t, f.c, f.adminURL, "web", 1, f.g)
	f.trackInstances()
	return f
}

type cliResult struct {
	Code           int
	Stdout, Stderr string
}

// execCLI runs `gatehouse exec` with args and stdin, bounded by 20s.
func execCLI(t *testing.T, f *fixture, stdin io.Reader, args ...string) cliResult {
	t.Helper()
	return adminCLI(t, f, 20*time.Second, stdin, "exec", args...)
}

// adminCLI runs the gatehouse command verb against the fixture's admin
// address, with args and stdin, in its directory, bounded by d.
func adminCLI(t *testing.T, f *fixture, d time.Duration, stdin io.Reader, verb string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.real, append([]string{verb, "--admin", f.admin}, args...)...)
	cmd.Dir, cmd.Stdin = f.dir, stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("gatehouse %s %q did not finish within %v", verb, args, d)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cliResult{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
}

// `gatehouse exec` runs the command in the instance's world and exits
// with its code; its own words appear only when it could not run one.
func TestExecCommandExitsWithTheCommandsCode(t *testing.T) {
	t.Parallel()
	f := execFixture(t)
	port := 0
	if st := status(f.c, f.adminURL); st != nil {
		port = st.Apps[0].Instances[0].Port
	}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  cliResult
	}{
		{name: "env of the instance", args: []string{"web", "--", "printenv", "PORT", "GREETING"}, want: cliResult{Stdout: fmt.Sprintf("%d\nhello\n", port)}},
		{name: "an instance by number", args: []string{"web/1", "--", "printenv", "GATEHOUSE_INSTANCE"}, want: cliResult{Stdout: "web-1\n"}},
		{name: "an instance by id", args: []string{"web-1", "--", "printenv", "GATEHOUSE_INSTANCE"}, want: cliResult{Stdout: "web-1\n"}},
		{name: "pwd is the app's dir", args: []string{"web", "--", "pwd"}, want: cliResult{Stdout: f.dir + "\n"}},
		{name: "stdin, output and exit code", stdin: "hi\n", args: []string{"web", "--", "sh", "-c", "read x; echo got:$x; echo warn >&2; exit 3"},
			want: cliResult{Code: 3, Stdout: "got:hi\n", Stderr: "warn\n"}},
		{name: "true", args: []string{"web", "--", "true"}, want: cliResult{}},
		{name: "the command's flags are its own", args: []string{"web", "ls", "-d", "--admin"}, want: cliResult{Code: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := execCLI(t, f, strings.NewReader(tc.stdin), tc.args...)
			if tc.name == "the command's flags are its own" {
				// ls, not gatehouse, refuses --admin: its message, its code.
				if got.Code != 2 || !strings.Contains(got.Stderr, "ls") || strings.Contains(got.Stderr, "gatehouse:") {
					t.Errorf("got %+v, want ls's own refusal of --admin", got)
				}
				return
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("gatehouse exec %q (-want +got):\n%s", tc.args, d)
			}
		})
	}
	t.Run("program not found", func(t *testing.T) {
		got := execCLI(t, f, nil, "web", "--", "no-such-program-here")
		if got.Code != 127 || !strings.Contains(got.Stderr, "no-such-program-here") {
			t.Errorf("got %+v, want exit 127 naming the program", got)
		}
	})
}

// A stdin that never ends (a terminal nobody types into) does not hold
// gatehouse exec once the command has exited.
func TestExecCommandEndsWithTheCommandNotItsStdin(t *testing.T) {
	t.Parallel()
	f := execFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.real, "exec", "--admin", f.admin, "web", "--", "echo", "done")
	cmd.Dir = f.dir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := cmd.Output()
	if ctx.Err() != nil || err != nil || string(out) != "done\n" {
		t.Errorf("gatehouse exec with an open stdin: %q, %v (timed out: %v)", out, err, ctx.Err() != nil)
	}
}

// Ctrl-C in gatehouse exec kills the command, and gatehouse exec exits
// 130 as a shell would.
func TestExecCommandCtrlCKillsTheCommand(t *testing.T) {
	t.Parallel()
	f := execFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, f.real, "exec", "--admin", f.admin, "web", "--", "sh", "-c", "echo $$; exec sleep 1000")
	cmd.Dir = f.dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("first line %q: %v %v", line, err, perr)
	}
	f.g.track([]int{pid}, nil)
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Errorf("gatehouse exec after Ctrl-C: exit %d, want 130", code)
	}
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("the command (pid %d) killed", pid), func() bool {
		return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	})
}
