// Package adoptiontest is the harness of the tests of adoption and of
// the supervisor's use of it: process groups to find or leave alone, and
// processes.json as a gatehouse that has gone would have left it.
package adoptiontest

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/adoption"
	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// SpawnGroup starts sh -c script in its own process group with env added
// to the test's; done receives its Wait result. The group is killed when
// the test ends.
func SpawnGroup(t *testing.T, script string, env ...string) (cmd *exec.Cmd, done chan error) {
	t.Helper()
	cmd = exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	return cmd, done
}

// WaitWorker waits until the group led by pgid has a member other than
// its leader (the worker its script forks) and returns its pid.
func WaitWorker(t *testing.T, pgid int) int {
	t.Helper()
	worker := 0
	testutil.WaitFor(t, 10*time.Second, "a worker in process group "+strconv.Itoa(pgid), func() bool {
		for _, pid := range procid.List() {
			if st, err := procid.ReadStat(pid); err == nil && pid != pgid && st.PGRP == pgid && st.State != 'Z' {
				worker = pid
				return true
			}
		}
		return false
	})
	return worker
}

// StartTicksOf is pid's start time in clock ticks since boot.
func StartTicksOf(t *testing.T, pid int) uint64 {
	t.Helper()
	st, err := procid.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	return st.StartTicks
}

// ExitedProcess is the pid and start time of a process that has exited.
func ExitedProcess(t *testing.T) (int, uint64) {
	t.Helper()
	cmd := exec.Command("sleep", "0.2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	ticks := StartTicksOf(t, pid)
	cmd.Wait()
	return pid, ticks
}

// WriteOrphanedDoc writes processes.json with recs, as a gatehouse that
// has since exited would have left it.
func WriteOrphanedDoc(t *testing.T, dataDir string, recs ...adoption.ProcessRecord) {
	t.Helper()
	var doc adoption.Doc
	doc.BootID = procid.BootID()
	doc.Written = time.Now()
	doc.Processes = recs
	WriteDoc(t, dataDir, OrphanDoc(t, doc))
}

// OrphanDoc is doc as if the gatehouse that wrote it had gone: its
// writer is a process that has exited.
func OrphanDoc(t *testing.T, doc adoption.Doc) adoption.Doc {
	t.Helper()
	doc.Gatehouse.PID, doc.Gatehouse.StartTicks = ExitedProcess(t)
	return doc
}

// ReadDoc reads dataDir's processes.json; ok is false when there is none.
func ReadDoc(t *testing.T, dataDir string) (doc adoption.Doc, ok bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, adoption.File))
	if errors.Is(err, os.ErrNotExist) {
		return doc, false
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v\n%s", adoption.File, err, b)
	}
	return doc, true
}

// WriteDoc writes doc as dataDir's processes.json.
func WriteDoc(t *testing.T, dataDir string, doc adoption.Doc) {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, adoption.File), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// KilledWithin reports whether the process whose Wait result arrives on
// done ended with an error (a signal, here) within the given time.
func KilledWithin(t *testing.T, done chan error, within time.Duration) bool {
	t.Helper()
	select {
	case err := <-done:
		done <- err
		var ee *exec.ExitError
		return errors.As(err, &ee)
	case <-time.After(within):
		return false
	}
}
