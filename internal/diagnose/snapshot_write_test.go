package diagnose_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

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
