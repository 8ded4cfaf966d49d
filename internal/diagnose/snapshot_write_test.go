package diagnose_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/diagnose"
)

// During an upgrade two gatehouses share data_dir, the old one draining
// and its successor serving, and each writes its state snapshot on its
// own clock. Neither write may fail or spoil the other's: the snapshot
// read at any moment is one of them, whole.
func TestSnapshotWritesOfTwoGatehousesStayWhole(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// Of different lengths, so that one written over the other's bytes
	// would not parse.
	snaps := []diagnose.Snapshot{
		{At: time.Unix(1, 0).UTC(), Apps: []diagnose.AppSnap{{Name: "old"}}},
		{At: time.Unix(2, 0).UTC(), Apps: []diagnose.AppSnap{{Name: "new", Command: []string{strings.Repeat("x", 8<<10)}}}},
	}
	if err := snaps[0].Write(dir); err != nil {
		t.Fatal(err)
	}
	const writes = 200
	var wg sync.WaitGroup
	errs := make(chan error, 2*writes)
	for _, s := range snaps {
		wg.Go(func() {
			for range writes {
				if err := s.Write(dir); err != nil {
					errs <- err
				}
			}
		})
	}
	readErrs := 0
	var firstRead error
	stop := make(chan struct{})
	var reader sync.WaitGroup
	reader.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := diagnose.ReadSnapshot(dir)
			if err == nil && len(got.Apps) != 1 {
				err = fmt.Errorf("%d apps", len(got.Apps))
			}
			if err != nil {
				if readErrs == 0 {
					firstRead = err
				}
				readErrs++
			}
		}
	})
	wg.Wait()
	close(stop)
	reader.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n == 0 {
			t.Errorf("a snapshot write failed: %v", err)
		}
		n++
	}
	if n > 0 {
		t.Errorf("%d of %d snapshot writes failed", n, 2*writes)
	}
	if readErrs > 0 {
		t.Errorf("%d reads found no whole snapshot; the first: %v", readErrs, firstRead)
	}
}

// state.json holds the apps' commands and their recent output: it is
// created within the umask, as any file gatehouse writes, not readable
// by every user where the umask says otherwise.
func TestSnapshotFileKeepsTheUmask(t *testing.T) {
	// Not parallel: the umask is the process's.
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	if err := (diagnose.Snapshot{At: time.Unix(1, 0).UTC()}).Write(dir); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, diagnose.SnapshotFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("%s written under umask 077 has mode %v, want -rw-------", diagnose.SnapshotFile, got)
	}
}

// A gatehouse killed in the middle of a snapshot write leaves its
// temporary file, under a name no later write uses: the next write
// removes those of processes no longer running, and leaves alone those of
// one that runs (an upgrade's other gatehouse, which may be writing).
func TestSnapshotWriteRemovesTheTemporaryFilesOfDeadProcesses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	// The parent of the test binary (go test) runs throughout.
	alive := os.Getppid()
	files := map[string]bool{ // name: kept
		fmt.Sprintf("%s.tmp.%d-1", diagnose.SnapshotFile, gone.Process.Pid): false,
		fmt.Sprintf("%s.tmp.%d-7", diagnose.SnapshotFile, 99999999):         false,
		fmt.Sprintf("%s.tmp.%d", diagnose.SnapshotFile, 987654321):          false,
		fmt.Sprintf("%s.tmp.%d-3", diagnose.SnapshotFile, alive):            true,
		"processes.json": true,
	}
	for name := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := (diagnose.Snapshot{At: time.Unix(1, 0).UTC()}).Write(dir); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	want := []string{diagnose.SnapshotFile}
	for name, kept := range files {
		if kept {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("data_dir after a snapshot write (-want +got):\n%s", diff)
	}
}
