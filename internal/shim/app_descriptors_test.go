package shim_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/shim"
)

const appEnv = "SHIM_TEST_APP"

// The app gets the shim's output pipe as its stdout and stderr and
// nothing else of the shim's: not the pipe's read end (fd 3), which only
// the shim holds for an adopter, nor the report pipe (fd 4). An app that
// held them would keep its own output pipe open for reading, and the
// report pipe for writing; one that uses descriptors 3 and 4 itself (an
// inherited listener, as with socket activation) would find them taken.
func TestAppInheritsNoShimDescriptor(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := shim.Start(shim.Spec{
		Exe: exe, Path: exe, Argv: []string{exe},
		Dir:        dir,
		Env:        append(os.Environ(), appEnv+"=1"),
		StatusPath: filepath.Join(dir, "app.exit"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Output.Close()
	done := make(chan struct{})
	var out []byte
	go func() {
		defer close(done)
		out, _ = io.ReadAll(st.Output)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		st.Cmd.Process.Kill()
		<-done
		t.Fatal("the app's output did not end")
	}
	st.Cmd.Wait()
	// Descriptors 3 and 4 of this test process, from what started it,
	// reach the shim and the app all the same: not the shim's.
	var leaked []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		n, target, _ := strings.Cut(l, " ")
		if mine, err := os.Readlink("/proc/self/fd/" + n); l == "" || (err == nil && mine == target) {
			continue
		}
		leaked = append(leaked, l)
	}
	if len(leaked) > 0 {
		t.Errorf("the app holds the shim's descriptors: %q (all it had: %q)", leaked, out)
	}
}
