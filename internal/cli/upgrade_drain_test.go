package cli_test

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A drain or undrain asked for while an upgrade waits for its successor
// is not lost in the hand-over: the successor took the old process's
// drain as the upgrade began, so a change after that would be undone by
// the upgrade (an undrained node back out of rotation for good, /readyz
// failing with nobody to know why; a drained one back in). What gatehouse
// drain and undrain report is what the node is once the new process
// serves: refused while the upgrade is under way, or applied to it.
func TestDrainDuringAnUpgradeIsNotLost(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// before is the node's state as the upgrade begins; during is
		// the command run while the successor starts.
		before, during string
	}{
		{name: "undrain during the upgrade", before: "drain", during: "undrain"},
		{name: "drain during the upgrade", during: "drain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newUpgradeFixture(t, nil, "1s")
			if tc.before != "" {
				if out, errOut, code := gatehouse(t, f.dir, tc.before, "--admin", f.adminURL); code != 0 {
					t.Fatalf("gatehouse %s: exit %d\n%s%s", tc.before, code, out, errOut)
				}
			}
			// The successor waits for go before it runs gatehouse: the
			// upgrade is under way until then.
			pidFile, goFile := filepath.Join(f.dir, "successor.pid"), filepath.Join(f.dir, "go")
			f.successor(t, "echo $$ > "+pidFile+"; while [ ! -e "+goFile+" ]; do sleep 0.05; done")
			op := f.upgrade(t)
			waitPIDFile(t, pidFile, "the successor to start")
			_, errOut, code := gatehouse(t, f.dir, tc.during, "--admin", f.adminURL)
			if err := os.WriteFile(goFile, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if r := waitOp(t, op, 60*time.Second, "the upgrade"); r.code != 0 {
				t.Fatalf("upgrade exited %d:\n%s", r.code, r.out)
			}
			if code := f.g.wait(t, 30*time.Second); code != 0 {
				t.Errorf("the old gatehouse exited %d, want 0", code)
			}
			c := httpClient(t, 5*time.Second)
			resp, err := c.Get(f.adminURL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got := strings.TrimSpace(string(b))
			// The state the node should be in: the command's if it
			// succeeded, the one before it if it was refused.
			want := map[bool]string{true: "draining", false: "ok"}[tc.before == "drain"]
			if code == 0 {
				want = map[bool]string{true: "draining", false: "ok"}[tc.during == "drain"]
			} else if !strings.Contains(errOut, "upgrade") {
				t.Errorf("gatehouse %s refused without naming the upgrade: %s", tc.during, errOut)
			}
			if got != want {
				t.Errorf("gatehouse %s exited %d during the upgrade; the new gatehouse's /readyz says %q, want %q", tc.during, code, got, want)
			}
		})
	}
}
