package process

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A command string run by sh found its program on the app's PATH,
// relative entries included (PATH: node_modules/.bin:/usr/bin, the way
// npm scripts do). gatehouse starts such a command directly, and must find
// the program the same way, not skip the relative entry and look it up on
// its own PATH instead.
func TestRelativePATHEntryFindsTheProgram(t *testing.T) {
	testutil.SkipInShort(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "pathapp"), []byte("#!/bin/sh\necho started\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=bin:/usr/bin:/bin"}
	line := "pathapp --serve"
	// What sh does with it.
	sh := exec.Command("sh", "-c", line)
	sh.Dir, sh.Env = dir, env
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("sh -c %q: %v %s", line, err, out)
	}
	argv := CommandArgv([]string{"sh", "-c", line})
	p, err := Spawn(Spec{Argv: argv, Dir: dir, Env: env, Out: io.Discard, StatusPath: filepath.Join(dir, "status")})
	if err != nil {
		t.Fatalf("sh -c %q runs, but gatehouse started it as %q: %v", line, argv, err)
	}
	<-p.Exited()
	if e := p.Exit(); e.Code == nil || *e.Code != 0 {
		t.Fatalf("%q: %v", argv, e)
	}
}
