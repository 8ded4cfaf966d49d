package adoption_test

// What gatehouse may do to processes it finds through processes.json:
// leftovers it may stop, and records it shares with another gatehouse.

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/adoption"
	"github.com/gatehouse/gatehouse/internal/adoption/adoptiontest"
	"github.com/gatehouse/gatehouse/internal/procid"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

func newRecords(dataDir string) *adoption.Records {
	return adoption.New(dataDir, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
}

// A previous gatehouse (killed hard) recorded web/web-1 as pid P; that
// process group has since died entirely, and P was reused by the leader of
// a NEW group: an instance web-1 of another gatehouse (another data_dir, same
// app and instance names), which has a worker child (npm → node, gunicorn
// master → workers). The worker is in group P, carries GATEHOUSE_APP=web and
// GATEHOUSE_INSTANCE=web-1 and started after the record: StopLeftovers must
// not take it for a leftover and kill the other gatehouse's live instance.
func TestReusedPIDNewGroupIsNotALeftover(t *testing.T) {
	testutil.SkipInShort(t)
	if procid.BootID() == "" {
		t.Skip("no boot id")
	}
	dataDir := t.TempDir()
	// The other gatehouse's instance: leader sh (pid P) with a worker child.
	other, done := adoptiontest.SpawnGroup(t, "sleep 30 & wait", "GATEHOUSE_APP=web", "GATEHOUSE_INSTANCE=web-1")
	p := other.Process.Pid
	adoptiontest.WaitWorker(t, p)
	// The record: the process that had pid P before, started earlier.
	adoptiontest.WriteOrphanedDoc(t, dataDir, adoption.ProcessRecord{App: "web", ID: "web-1", PID: p, PGID: p,
		StartTicks: adoptiontest.StartTicksOf(t, p) - 1, Port: 1, StartedAt: time.Now()})
	newRecords(dataDir).StopLeftovers(nil)
	if adoptiontest.KilledWithin(t, done, 300*time.Millisecond) {
		t.Fatalf("StopLeftovers killed process group %d, a live group that only reuses the recorded pid "+
			"(its leader is a different process than the record's)", p)
	}
}

// A record whose pid is a live leftover but whose pgid is not that
// process's group (a file edited by hand, or written by another version):
// StopLeftovers must check that the live leader is in the recorded pgid
// before it signals that group, here a stand-in for the user's shell's job.
func TestRecordedPGIDIsCheckedAgainstTheLiveLeader(t *testing.T) {
	testutil.SkipInShort(t)
	if procid.BootID() == "" {
		t.Skip("no boot id")
	}
	dataDir := t.TempDir()
	shell, shellDone := adoptiontest.SpawnGroup(t, "sleep 30 & wait") // some unrelated job, its own group
	leftover, _ := adoptiontest.SpawnGroup(t, "sleep 30 & wait", "GATEHOUSE_APP=web", "GATEHOUSE_INSTANCE=web-1")
	adoptiontest.WaitWorker(t, shell.Process.Pid)
	adoptiontest.WaitWorker(t, leftover.Process.Pid)
	adoptiontest.WriteOrphanedDoc(t, dataDir, adoption.ProcessRecord{App: "web", ID: "web-1", PID: leftover.Process.Pid,
		PGID: shell.Process.Pid, StartTicks: adoptiontest.StartTicksOf(t, leftover.Process.Pid), Port: 1, StartedAt: time.Now()})
	newRecords(dataDir).StopLeftovers(nil)
	if adoptiontest.KilledWithin(t, shellDone, 300*time.Millisecond) {
		t.Fatalf("StopLeftovers signalled process group %d, which the recorded leftover (pid %d, pgid %d) is not in",
			shell.Process.Pid, leftover.Process.Pid, leftover.Process.Pid)
	}
}

// A second gatehouse started on a data_dir that a running gatehouse uses
// leaves the first's processes alone, and must leave its record alone too:
// were it overwritten with none of them and the first killed hard, its
// leftovers would be unknown to the next run.
func TestSecondGatehouseKeepsTheFirstsRecord(t *testing.T) {
	testutil.SkipInShort(t)
	dataDir := t.TempDir()
	first := newRecords(dataDir)
	first.Claim()
	app, _ := adoptiontest.SpawnGroup(t, "sleep 30 & wait", "GATEHOUSE_APP=web", "GATEHOUSE_INSTANCE=web-1")
	first.Started(adoption.ProcessRecord{App: "web", ID: "web-1", PID: app.Process.Pid, PGID: app.Process.Pid,
		StartTicks: adoptiontest.StartTicksOf(t, app.Process.Pid), Port: 1, StartedAt: time.Now()})

	second := newRecords(dataDir)
	second.StopLeftovers(nil) // the first is alive: nothing is stopped
	second.Claim()

	doc, _ := adoptiontest.ReadDoc(t, dataDir)
	if len(doc.Processes) != 1 {
		t.Fatalf("after a second gatehouse started on the same data_dir, processes.json records %d processes; "+
			"the first gatehouse's running web-1 (pid %d) is no longer recorded", len(doc.Processes), app.Process.Pid)
	}
}
