package supervisor

// What gatehouse may do to processes it finds through processes.json or
// starts from a command line: leftovers it may stop, records it shares
// with another gatehouse, and how it finds an app's program.

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/procid"
)

// discardLogger is a logger that writes nowhere.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// spawnGroup starts sh -c script in its own process group with env.
func spawnGroup(t *testing.T, script string, env ...string) (*exec.Cmd, chan error) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	return cmd, done
}

// startTicksOf is pid's start time in clock ticks since boot.
func startTicksOf(t *testing.T, pid int) uint64 {
	t.Helper()
	st, err := procid.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	return st.StartTicks
}

// exitedProcess is the pid and start time of a process that has exited.
func exitedProcess(t *testing.T) (int, uint64) {
	cmd := exec.Command("sleep", "0.2")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	ticks := startTicksOf(t, pid)
	cmd.Wait()
	return pid, ticks
}

// writeOrphanedDoc writes processes.json with recs, as a gatehouse that
// has since exited would have left it.
func writeOrphanedDoc(t *testing.T, dataDir string, recs ...ProcessRecord) {
	t.Helper()
	var doc processesDoc
	doc.BootID = procid.BootID()
	doc.Gatehouse.PID, doc.Gatehouse.StartTicks = exitedProcess(t)
	doc.Written = time.Now()
	doc.Processes = recs
	b, _ := json.Marshal(doc)
	if err := os.WriteFile(filepath.Join(dataDir, processesFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// killedWithin reports whether the process whose Wait result arrives on
// done ended with an error (a signal, here) within the given time.
func killedWithin(t *testing.T, done chan error, within time.Duration) bool {
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

// A previous gatehouse (killed hard) recorded web/web-1 as pid P; that
// process group has since died entirely, and P was reused by the leader of
// a NEW group: an instance web-1 of another gatehouse (another data_dir, same
// app and instance names), which has a worker child (npm → node, gunicorn
// master → workers). The worker is in group P, carries GATEHOUSE_APP=web and
// GATEHOUSE_INSTANCE=web-1 and started after the record: stopLeftovers must
// not take it for a leftover and kill the other gatehouse's live instance.
func TestReusedPIDNewGroupIsNotALeftover(t *testing.T) {
	if procid.BootID() == "" {
		t.Skip("no boot id")
	}
	dataDir := t.TempDir()
	// The other gatehouse's instance: leader sh (pid P) with a worker child.
	other, done := spawnGroup(t, "sleep 30 & wait", "GATEHOUSE_APP=web", "GATEHOUSE_INSTANCE=web-1")
	p := other.Process.Pid
	time.Sleep(200 * time.Millisecond) // the worker is forked
	// The record: the process that had pid P before, started earlier.
	writeOrphanedDoc(t, dataDir, ProcessRecord{App: "web", ID: "web-1", PID: p, PGID: p,
		StartTicks: startTicksOf(t, p) - 1, Port: 1, StartedAt: time.Now()})
	newRecords(dataDir, discardLogger()).stopLeftovers(nil)
	if killedWithin(t, done, 300*time.Millisecond) {
		t.Fatalf("stopLeftovers killed process group %d, a live group that only reuses the recorded pid "+
			"(its leader is a different process than the record's)", p)
	}
}

// A record whose pid is a live leftover but whose pgid is not that
// process's group (a file edited by hand, or written by another version):
// stopLeftovers must check that the live leader is in the recorded pgid
// before it signals that group, here a stand-in for the user's shell's job.
func TestRecordedPGIDIsCheckedAgainstTheLiveLeader(t *testing.T) {
	if procid.BootID() == "" {
		t.Skip("no boot id")
	}
	dataDir := t.TempDir()
	shell, shellDone := spawnGroup(t, "sleep 30 & wait") // some unrelated job, its own group
	leftover, _ := spawnGroup(t, "sleep 30 & wait", "GATEHOUSE_APP=web", "GATEHOUSE_INSTANCE=web-1")
	time.Sleep(200 * time.Millisecond)
	writeOrphanedDoc(t, dataDir, ProcessRecord{App: "web", ID: "web-1", PID: leftover.Process.Pid,
		PGID: shell.Process.Pid, StartTicks: startTicksOf(t, leftover.Process.Pid), Port: 1, StartedAt: time.Now()})
	newRecords(dataDir, discardLogger()).stopLeftovers(nil)
	if killedWithin(t, shellDone, 300*time.Millisecond) {
		t.Fatalf("stopLeftovers signalled process group %d, which the recorded leftover (pid %d, pgid %d) is not in",
			shell.Process.Pid, leftover.Process.Pid, leftover.Process.Pid)
	}
}

// A second gatehouse started on a data_dir that a running gatehouse uses
// leaves the first's processes alone, and must leave its record alone too:
// were it overwritten with none of them and the first killed hard, its
// leftovers would be unknown to the next run.
func TestSecondGatehouseKeepsTheFirstsRecord(t *testing.T) {
	dataDir := t.TempDir()
	first := newRecords(dataDir, discardLogger())
	first.claim()
	app, _ := spawnGroup(t, "sleep 30 & wait", "GATEHOUSE_APP=web", "GATEHOUSE_INSTANCE=web-1")
	first.started(ProcessRecord{App: "web", ID: "web-1", PID: app.Process.Pid, PGID: app.Process.Pid,
		StartTicks: startTicksOf(t, app.Process.Pid), Port: 1, StartedAt: time.Now()})

	second := newRecords(dataDir, discardLogger())
	second.stopLeftovers(nil) // the first is alive: nothing is stopped
	second.claim()

	b, err := os.ReadFile(filepath.Join(dataDir, processesFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc processesDoc
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Processes) != 1 {
		t.Fatalf("after a second gatehouse started on the same data_dir, processes.json records %d processes; "+
			"the first gatehouse's running web-1 (pid %d) is no longer recorded", len(doc.Processes), app.Process.Pid)
	}
}

// A command string run by sh found its program on the app's PATH,
// relative entries included (PATH: node_modules/.bin:/usr/bin, the way
// npm scripts do). gatehouse starts such a command directly, and must find
// the program the same way, not skip the relative entry and look it up on
// its own PATH instead.
func TestRelativePATHEntryFindsTheProgram(t *testing.T) {
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
	argv := commandArgv([]string{"sh", "-c", line})
	p, err := spawn(spawnSpec{argv: argv, dir: dir, env: env, out: io.Discard, statusPath: filepath.Join(dir, "status")})
	if err != nil {
		t.Fatalf("sh -c %q runs, but gatehouse started it as %q: %v", line, argv, err)
	}
	<-p.exited
	if e := p.exitInfo(); e.code == nil || *e.code != 0 {
		t.Fatalf("%q: %v", argv, e)
	}
}
