package cli_test

import (
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Three `gatehouse upgrade` in a row under load (32 keep-alive clients, an
// event stream, an admin poller) drop nothing: no request fails, no
// connection is refused or reset, the app processes are the same ones
// throughout, each upgrade hands over to a new gatehouse process, and
// access.log has every request exactly once.
func TestUpgradeUnderLoadDropsNothing(t *testing.T) {
	t.Parallel()
	r, pid, before := startRig(t)
	tr := startTraffic(t, r, trafficOptions{clients: 32, stream: true, poll: true})
	// The load runs 1s before the first upgrade, between upgrades and
	// after the last one.
	tr.runFor(t, time.Second, 200)

	served := []int{pid}
	for i := 1; i <= 3; i++ {
		u := r.upgrade(t)
		if u.code != 0 || u.newPID <= 0 {
			t.Fatalf("upgrade %d: exit %d, new pid %d\n%s", i, u.code, u.newPID, u.out.String())
		}
		drained := r.serving(t, pid, u.newPID)
		t.Logf("upgrade %d: gatehouse pid %d → %d: ready after %v (the upgrade command), the old process gone %v later",
			i, pid, u.newPID, u.took.Round(time.Millisecond), drained.Round(time.Millisecond))
		pid = u.newPID
		served = append(served, pid)
		if got := r.instances(t, 2); !maps.Equal(got, before) {
			t.Errorf("after upgrade %d the instances are %v, want the same processes as before, %v", i, got, before)
		}
		tr.runFor(t, time.Second, 200)
	}
	tr.stop()
	tr.report(t)

	if len(slices.Compact(slices.Sorted(slices.Values(served)))) != 4 {
		t.Errorf("gatehouse pids %v: want 4 different processes, one after each upgrade", served)
	}
	// Each upgrade_ready names the new pid and the one it replaced, in turn.
	var chain []int
	for _, ev := range r.events(t) {
		if ev.Type == telemetry.EventUpgradeReady {
			var newPID, oldPID int
			if _, err := fmt.Sscanf(ev.Detail, "gatehouse pid %d serves; pid %d stops", &newPID, &oldPID); err != nil || oldPID != ev.PID {
				t.Errorf("upgrade_ready %q from pid %d", ev.Detail, ev.PID)
			}
			if len(chain) == 0 {
				chain = append(chain, oldPID)
			}
			chain = append(chain, newPID)
		}
	}
	if diff := cmp.Diff(served, chain); diff != "" {
		t.Errorf("gatehouse pids by upgrade_ready events (-upgrade commands +events):\n%s", diff)
	}
	if tr.cleanEnds < 3 || tr.events == 0 {
		t.Errorf("event streams %v with %d events, %d ended cleanly: want the stream ended cleanly by each upgrade and opened again",
			tr.streams, tr.events, tr.cleanEnds)
	}
	if tr.polls < 20 {
		t.Errorf("the admin API was polled %d times; want it polled throughout", tr.polls)
	}

	// access.log, complete once the last gatehouse has stopped: one line
	// for each answered request, and one for each event stream.
	r.stop(t, pid)
	logged := r.accessIDs(t)
	var missing, extra, twice []string
	for id := range tr.answered {
		if logged[id] == 0 {
			missing = append(missing, id)
		}
	}
	for id, n := range logged {
		if n > 1 {
			twice = append(twice, fmt.Sprintf("%s ×%d", id, n))
		}
		if strings.HasPrefix(id, "load-") && !tr.answered[id] {
			extra = append(extra, id)
		}
	}
	for _, id := range tr.streams {
		if logged[id] != 1 {
			t.Errorf("event stream %s has %d access.log lines, want 1", id, logged[id])
		}
	}
	for _, c := range []struct {
		what string
		ids  []string
	}{{"answered but not in access.log", missing}, {"in access.log but not answered", extra}, {"in access.log more than once", twice}} {
		if len(c.ids) > 0 {
			slices.Sort(c.ids)
			t.Errorf("%d requests %s: %v", len(c.ids), c.what, c.ids[:min(len(c.ids), 20)])
		}
	}
	t.Logf("access.log: %d lines for %d answered requests and %d event streams", sum(logged), len(tr.answered), len(tr.streams))
	if sum(logged) != len(tr.answered)+len(tr.streams) {
		t.Errorf("access.log has %d lines; want one for each of the %d answered requests and %d event streams",
			sum(logged), len(tr.answered), len(tr.streams))
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// An upgrade to a binary that does not start fails with the reason, and
// the old gatehouse serves on with the same instances, which it supervises
// again: a later upgrade to a good binary works.
//
// Not covered: a new binary that hangs (never ready). The old process
// gives up after server.Options.UpgradeTimeout, which neither the
// command line nor the config sets: its 60s default is too long for a
// test.
func TestUpgradeToBrokenBinaryKeepsServing(t *testing.T) {
	t.Parallel()
	r, pid, before := startRig(t)
	tr := startTraffic(t, r, trafficOptions{clients: 8, poll: true})
	tr.runFor(t, time.Second, 50)

	replaceFile(t, r.exe, []byte("#!/bin/sh\nexit 3\n"))
	u := r.upgrade(t)
	t.Logf("failed upgrade: exit %d after %v:\n%s", u.code, u.took.Round(time.Millisecond), u.out.String())
	if u.code == 0 || !strings.Contains(u.out.String(), "exited with code 3") {
		t.Errorf("upgrade to a script that exits 3: exit %d; want non-zero, naming the cause (exited with code 3)\n%s", u.code, u.out.String())
	}
	// events.log is written a moment later.
	var aborts []string
	testutil.WaitFor(t, 10*time.Second, "an upgrade_abort event", func() bool {
		aborts = nil
		for _, ev := range r.events(t) {
			if ev.Type == telemetry.EventUpgradeAbort {
				aborts = append(aborts, ev.Detail)
			}
		}
		return len(aborts) > 0
	})
	if len(aborts) != 1 || !strings.Contains(aborts[0], "exited with code 3") {
		t.Errorf("upgrade_abort events %q; want one naming the cause", aborts)
	}
	// The old process serves on, with the same app processes.
	if pf, err := r.processes(); !testutil.ProcessAlive(pid) || !slices.Equal(r.gatehouses(), []int{pid}) || err != nil || pf.Gatehouse.PID != pid {
		t.Fatalf("gatehouse processes %v after the failed upgrade, the record's %d (%v); want the old one, %d, alone",
			r.gatehouses(), pf.Gatehouse.PID, err, pid)
	}
	if got := r.instances(t, 2); !maps.Equal(got, before) {
		t.Errorf("after the failed upgrade the instances are %v, want the same processes, %v", got, before)
	}
	out, stderr, code := gatehouse(t, r.dir, "status", "--admin", r.adminURL)
	for id, p := range before {
		if code != 0 || !regexp.MustCompile(`(?m)^web\s+`+id+`\s+`+strconv.Itoa(p)+`\s+\d+\s+ready\s`).MatchString(out) {
			t.Errorf("gatehouse status: exit %d, want %s (pid %d) ready\n%s%s", code, id, p, out, stderr)
		}
	}
	tr.runFor(t, time.Second, 50)

	// The real binary back: the upgrade goes through, and the successor
	// adopts the same processes.
	r.installBinary(t)
	u = r.upgrade(t)
	if u.code != 0 || u.newPID <= 0 {
		t.Fatalf("upgrade after the real binary is back: exit %d\n%s", u.code, u.out.String())
	}
	r.serving(t, pid, u.newPID)
	if got := r.instances(t, 2); !maps.Equal(got, before) {
		t.Errorf("after the second upgrade the instances are %v, want the same processes, %v", got, before)
	}
	tr.runFor(t, time.Second, 50)
	tr.stop()
	tr.report(t)
}

// An instance that crashes while the gatehouse is handing over — the old
// process has let it go, the new one has not yet adopted it — is restarted
// exactly once, by the new process, which reports its exit code; the other
// instance is left alone.
func TestCrashDuringHandoverRestartedOnce(t *testing.T) {
	t.Parallel()
	r, pid, before := startRig(t)
	st := status(r.c, r.adminURL)
	ports := map[string]int{}
	for _, in := range st.Apps[0].Instances {
		ports[in.ID] = in.Port
	}
	// The new "binary" waits until the test has crashed an instance
	// before it runs the real one: the handover window is held open.
	crashDone := filepath.Join(r.dir, "crash-done")
	r.successor(t, fmt.Sprintf("while [ ! -e %s ]; do sleep 0.01; done", crashDone))

	u := r.upgradeAsync(t)
	testutil.WaitFor(t, 30*time.Second, "the old gatehouse to start its successor", func() bool {
		select {
		case <-u.done:
			t.Fatalf("upgrade ended early: exit %d\n%s", u.code, u.out.String())
		default:
		}
		return strings.Contains(u.out.String(), "waiting up to")
	})
	crashed := before["web-1"]
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := c.Post(fmt.Sprintf("http://127.0.0.1:%d/crash", ports["web-1"]), "text/plain", nil); err == nil {
		resp.Body.Close()
	}
	testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("web-1 (pid %d) to exit", crashed), func() bool { return !testutil.ProcessAlive(crashed) })
	for _, ev := range r.events(t) {
		if ev.Type == telemetry.EventAdopt {
			t.Fatalf("the successor adopted %s before web-1 crashed", ev.Instance)
		}
	}
	if err := os.WriteFile(crashDone, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	u.wait(t)
	if u.code != 0 || u.newPID <= 0 {
		t.Fatalf("upgrade: exit %d\n%s", u.code, u.out.String())
	}
	r.serving(t, pid, u.newPID)
	after := r.instances(t, 2)
	if after["web-1"] == crashed || after["web-2"] != before["web-2"] {
		t.Errorf("instances %v after the crash, were %v: want web-1 restarted as a new process, web-2 the same", after, before)
	}
	// Stopped, so that events.log has everything the new process wrote.
	r.stop(t, u.newPID)

	var exits, starts, restarts []telemetry.Event
	begun := false
	for _, ev := range r.events(t) {
		begun = begun || ev.Type == telemetry.EventUpgradeBegin
		if !begun || ev.Instance != "web-1" {
			continue
		}
		switch ev.Type {
		case telemetry.EventExit:
			exits = append(exits, ev)
		case telemetry.EventStart:
			starts = append(starts, ev)
		case telemetry.EventRestart:
			restarts = append(restarts, ev)
		}
	}
	if len(exits) != 1 || exits[0].PID != crashed || exits[0].ExitCode == nil || *exits[0].ExitCode != 3 {
		t.Errorf("web-1's exit events since the upgrade began: %+v; want one, pid %d, exit_code 3", exits, crashed)
	} else if !strings.Contains(exits[0].Detail, "while no gatehouse watched it") {
		t.Errorf("web-1's exit %q: want it seen by the new process as it adopted it", exits[0].Detail)
	}
	if len(starts) != 1 || starts[0].PID != after["web-1"] || len(restarts) != 1 {
		t.Errorf("web-1's start events since the upgrade began: %+v, restarts %+v; want one restart, starting pid %d",
			starts, restarts, after["web-1"])
	}
}

// Under systemd the upgrade says RELOADING=1 (the old process), then
// MAINPID=<new pid> with READY=1, from the old process once the new one
// said it serves (so that systemd knows the new main process before the
// old one can exit) and from the new one (so that it holds whichever way
// the datagrams race); the old process then exits without a word, since
// any STOPPING=1 it sent would stop the unit (NotifyAccess=all takes it
// from any process of the unit). A failed upgrade ends with READY=1 from
// the old process.
func TestUpgradeTellsSystemdTheNewMainPID(t *testing.T) {
	t.Parallel()
	r := newUpgradeRig(t, 1)
	sd := listenNotify(t, r.dir)
	r.env = []string{"NOTIFY_SOCKET=" + sd.path}
	pid := r.start(t)
	sd.expect(t, pid, "READY=1\nSTATUS=serving\n")
	r.instances(t, 1)

	// A failed upgrade: RELOADING=1, then READY=1, both from the old.
	replaceFile(t, r.exe, []byte("#!/bin/sh\nexit 3\n"))
	if u := r.upgrade(t); u.code == 0 {
		t.Fatalf("upgrade to a broken binary: exit 0\n%s", u.out.String())
	}
	sd.expect(t, pid, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=NOW\n")
	sd.expect(t, pid, "READY=1\nSTATUS=serving\n")

	r.installBinary(t)
	u := r.upgrade(t)
	if u.code != 0 || u.newPID <= 0 {
		t.Fatalf("upgrade: exit %d\n%s", u.code, u.out.String())
	}
	sd.expect(t, pid, "RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=NOW\n")
	mainPID := fmt.Sprintf("MAINPID=%d\nREADY=1\nSTATUS=serving\n", u.newPID)
	sd.expectAnyOrder(t, notifyMsg{pid: pid, text: mainPID}, notifyMsg{pid: u.newPID, text: mainPID})
	r.serving(t, pid, u.newPID)
	sd.nothingMore(t)

	// The new main process says STOPPING=1 when it stops.
	r.stop(t, u.newPID)
	sd.expect(t, u.newPID, "STOPPING=1\nSTATUS=stopping: draining requests, then the apps\n")
	sd.nothingMore(t)
}

// A gatehouse killed with SIGKILL under load leaves its apps running; a
// new `gatehouse run` on the same config and data_dir adopts them (no
// restart), and requests succeed again.
func TestSIGKILLedGatehouseUnderLoadAdopted(t *testing.T) {
	t.Parallel()
	r, pid, before := startRig(t)
	tr := startTraffic(t, r, trafficOptions{clients: 8})
	tr.runFor(t, time.Second, 50)

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-r.done
	mark := len(r.events(t))
	restarted := time.Now()
	r.start(t)
	// Requests fail while nothing listens; they must succeed again soon.
	ok, _ := tr.counts()
	testutil.WaitFor(t, 15*time.Second, "requests to succeed again", func() bool { n, _ := tr.counts(); return n >= ok+100 })
	t.Logf("requests succeed again %v after the restart", time.Since(restarted).Round(time.Millisecond))
	if got := r.instances(t, 2); !maps.Equal(got, before) {
		t.Errorf("after the restart the instances are %v, want the same processes, %v", got, before)
	}
	// No failure once the new gatehouse serves.
	_, failed := tr.counts()
	tr.runFor(t, time.Second, 200)
	tr.stop()
	if _, f := tr.counts(); f != failed {
		tr.report(t)
		t.Errorf("%d requests failed once the new gatehouse served", f-failed)
	}
	t.Logf("%d requests failed while no gatehouse served", failed)

	// events.log is written asynchronously: wait for the adopt events.
	var adopted map[string]int
	var others []telemetry.Event
	testutil.WaitFor(t, 10*time.Second, "adopt events", func() bool {
		adopted, others = map[string]int{}, nil
		for _, ev := range r.events(t)[mark:] {
			switch ev.Type {
			case telemetry.EventAdopt:
				adopted[ev.Instance] = ev.PID
			case telemetry.EventStart, telemetry.EventStop, telemetry.EventExit, telemetry.EventRestart:
				others = append(others, ev)
			}
		}
		return len(adopted) >= len(before)
	})
	if !maps.Equal(adopted, before) || len(others) > 0 {
		t.Errorf("events after the restart: adopt %v, others %+v; want adopt %v and no start, stop, exit or restart",
			adopted, others, before)
	}
}
