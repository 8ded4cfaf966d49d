package procdump

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/reaper"
)

const (
	// toolWaitDelay is how long a killed tool's output pipes are waited
	// for before they are closed under it.
	toolWaitDelay = 2 * time.Second
	// maxToolOutput bounds the text dump a tool's stdout is held in
	// before it is written out (whole, so that a failed run writes
	// nothing).
	maxToolOutput = 64 << 20
	// stderrTail is how much of a tool's stderr an error quotes.
	stderrTail = 2 << 10
)

// toolRun is one run of a tool: its output and how long it ran.
type toolRun struct {
	stdout  bytes.Buffer
	stderr  tailBuffer
	elapsed time.Duration
}

// runTool runs bin in a process group of its own (gcore runs gdb under a
// shell), killed whole when ctx ends. A process left stopped by a tracer
// killed mid-attach is continued.
func runTool(ctx context.Context, t *target, opt Options, cred *syscall.Credential, bin string, args ...string) (*toolRun, error) {
	run := &toolRun{}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = toolWaitDelay
	cmd.Stdout = &capWriter{buf: &run.stdout, max: maxToolOutput}
	cmd.Stderr = &run.stderr
	if opt.Path != "" {
		cmd.Env = append(withoutPath(os.Environ()), "PATH="+opt.Path)
	}
	start := time.Now()
	// Through the reaper: a PID 1 gatehouse's reaping of orphans would
	// otherwise take the tool's exit status before Wait does.
	err := reaper.Start(cmd)
	if err == nil {
		err = reaper.Wait(cmd)
	}
	run.elapsed = time.Since(start)
	if ctx.Err() != nil {
		resumeIfStopped(t)
		return run, fmt.Errorf("%s: %w", bin, context.Cause(ctx))
	}
	if err != nil {
		return run, &toolFailedError{Tool: bin, Err: err, Stderr: run.stderr.String()}
	}
	return run, nil
}

// toolFailedError is a tool's run that failed, with the end of what it
// said on stderr.
type toolFailedError struct {
	Tool   string
	Err    error
	Stderr string
}

func (e *toolFailedError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		return fmt.Sprintf("%s: %v", e.Tool, e.Err)
	}
	return fmt.Sprintf("%s: %v: %s", e.Tool, e.Err, msg)
}

func (e *toolFailedError) Unwrap() error { return e.Err }

// resumeIfStopped continues a process a tracer killed mid-attach left in
// a group stop; a stopped process would stop serving.
func resumeIfStopped(t *target) {
	if st, err := procid.ReadStat(t.pid); err == nil && st.State == 'T' {
		_ = t.signal(syscall.SIGCONT)
	}
}

func withoutPath(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PATH=") {
			out = append(out, kv)
		}
	}
	return out
}

// capWriter keeps at most max bytes and fails past it, which stops the
// copy from the tool (the tool then sees a broken pipe).
type capWriter struct {
	buf *bytes.Buffer
	max int
}

var errTooMuchOutput = errors.New("tool output over the limit")

func (c *capWriter) Write(p []byte) (int, error) {
	if c.buf.Len()+len(p) > c.max {
		return 0, errTooMuchOutput
	}
	return c.buf.Write(p)
}

// tailBuffer keeps the last stderrTail bytes written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - stderrTail; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// copyCtx copies src to dst, stopping between reads when ctx ends.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) error {
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return context.Cause(ctx)
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
