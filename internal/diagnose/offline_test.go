package diagnose_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gatehouse/gatehouse/internal/diagnose"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A copy of data_dir, diagnosed offline (by the package and by `gatehouse
// diagnose --data-dir`), names the same findings with the same evidence as
// the running gatehouse did.
func TestOfflineMatchesLive(t *testing.T) {
	t.Parallel()
	g, since := crashScenario(t)
	live, _ := apiDiagnose(t, g, since)
	if len(live.Findings) == 0 || live.Findings[0].ID != "crash" {
		t.Fatalf("live diagnose after a crash: want crash first; got:\n%s", render(live))
	}
	dir := t.TempDir()
	if err := copyTree(g.Config.DataDir, dir); err != nil {
		t.Fatalf("copy data dir: %v", err)
	}
	opts := cmp.Options{cmpopts.EquateEmpty()}

	ev, err := diagnose.Load(dir, since)
	if err != nil {
		t.Fatalf("Load(copy): %v", err)
	}
	off := diagnose.Run(ev)
	if d := cmp.Diff(live.Findings, off.Findings, opts); d != "" {
		t.Errorf("offline findings differ from live (-live +offline):\n%s", d)
	}
	if off.Requests != live.Requests || off.Errors != live.Errors {
		t.Errorf("offline: %d requests, %d 5xx; live: %d, %d", off.Requests, off.Errors, live.Requests, live.Errors)
	}

	bin := testutil.BuildBinary(t, "github.com/gatehouse/gatehouse/cmd/gatehouse")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "diagnose", "--data-dir", dir, "--json", "--since", "10m")
	cmd.Dir = t.TempDir() // no gatehouse.yaml around
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("gatehouse diagnose --data-dir: %v\n%s", err, stderr)
	}
	var cli diagnose.Report
	if err := json.Unmarshal(out, &cli); err != nil {
		t.Fatalf("gatehouse diagnose --json: %v\n%s", err, out)
	}
	if d := cmp.Diff(live.Findings, cli.Findings, opts); d != "" {
		t.Errorf("`gatehouse diagnose --data-dir COPY --json` findings differ from live (-live +cli):\n%s", d)
	}
}

// copyTree copies the regular files under src to dst, keeping the tree.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			// A temporary file gatehouse renamed into place meanwhile,
			// as a copy of a live data_dir meets them.
			return nil
		}
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
}
