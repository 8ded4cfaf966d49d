package cli_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A binary built from a git checkout with -buildvcs names the checkout's
// commit and the commit's time, in its line and in its JSON.
func TestVersionNamesTheCheckoutsCommit(t *testing.T) {
	t.Parallel()
	testutil.SkipInShort(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	out, err := exec.Command("git", "log", "-1", "--format=%H %ct").Output()
	if err != nil {
		t.Skipf("not a git checkout: git log: %v", err)
	}
	head, secs, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	unix, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		t.Fatalf("git log -1 --format='%%H %%ct' = %q: %v", out, err)
	}
	// The go command records the commit's time in UTC, to the second.
	commitTime := time.Unix(unix, 0).UTC().Format(time.RFC3339)

	bin := filepath.Join(t.TempDir(), "gatehouse")
	build := exec.Command("go", "build", "-o", bin, gatehousePkg)
	// The environment may say -buildvcs=false (a later flag in GOFLAGS
	// wins); this build is the one a user makes from a clone.
	build.Env = append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -buildvcs=true"))
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("GOFLAGS=-buildvcs=true go build: %v\n%s", err, b)
	}
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, args...).Output()
		if err != nil {
			t.Fatalf("gatehouse %v: %v", args, err)
		}
		return string(out)
	}

	line := run("version")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "gatehouse" || f[2] != "("+head[:12]+"," || !strings.Contains(line, commitTime) {
		t.Errorf("gatehouse version = %q; want \"gatehouse VERSION (%s, %s…) GO OS/ARCH\"", line, head[:12], commitTime)
	}
	var v struct {
		Version, Commit, Date, Go, Platform string
		Modified                            bool
	}
	js := run("version", "--json")
	if err := json.Unmarshal([]byte(js), &v); err != nil {
		t.Fatalf("gatehouse version --json = %q: %v", js, err)
	}
	if v.Commit != head || v.Date != commitTime || v.Version == "" || v.Go == "" || v.Platform == "" {
		t.Errorf("gatehouse version --json = %s; want commit %s, date %s, and a version, go and platform", js, head, commitTime)
	}
}
