package cli_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// A gatehouse killed (SIGKILL) in the middle of `gatehouse upgrade`,
// while its successor is still taking over, leaves the successor
// serving: it holds the listening sockets and adopts the instances (the
// same processes, not restarted), finds nobody to tell it is ready, says
// so in an upgrade_predecessor_gone event, and serves on as the one
// gatehouse, whose stop stops the apps.
func TestUpgradeWhoseOldProcessIsKilledLeavesTheSuccessorServing(t *testing.T) {
	for _, tc := range []struct {
		name string
		// killWhen is what the test waits for before it kills the old
		// process: the successor has started, or it is probing the
		// instances it adopted (each probe takes 1.5s).
		killWhen string
	}{
		{name: "as the successor starts", killWhen: "started"},
		{name: "while the successor probes the adopted instances", killWhen: "adopted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newUpgradeFixture(t, map[string]string{"FAULT_HEALTH_DELAY": "1500ms"}, "5s")
			instance := f.instancePID(t)
			old := f.g.cmd.Process.Pid
			pidFile := filepath.Join(f.dir, "successor.pid")
			f.successor(t, "echo $$ > "+pidFile)
			op := f.upgrade(t)

			var succ int
			testutil.WaitFor(t, 20*time.Second, "the successor to start", func() bool {
				b, err := os.ReadFile(pidFile)
				succ, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				return err == nil && succ > 0
			})
			if tc.killWhen == "adopted" {
				testutil.WaitFor(t, 20*time.Second, "the successor to adopt the instance", func() bool {
					return strings.Contains(f.g.stderr.String(), "adopted without a restart")
				})
				if strings.Contains(f.g.stderr.String(), "took over from the previous gatehouse") {
					t.Fatal("the successor was ready before the old gatehouse was killed: the handover window is too narrow on this machine")
				}
			}
			if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-f.g.done
			// The upgrade command loses the process it asked; it must end.
			r := waitOp(t, op, 30*time.Second, "gatehouse upgrade")
			t.Logf("gatehouse upgrade, its gatehouse killed: exit %d:\n%s", r.code, r.out)

			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			testutil.WaitFor(t, 30*time.Second, "the successor to answer with the adopted instance", func() bool {
				if !testutil.ProcessAlive(succ) {
					t.Fatalf("the successor (pid %d) exited after the old gatehouse was killed:\n%s", succ, tail(f.g.stderr.String()))
				}
				resp, err := c.Get("http://" + f.listen + "/pid")
				if err != nil {
					return false
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK && string(b) == strconv.Itoa(instance)
			})
			st := status(c, f.adminURL)
			if st == nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1 ||
				st.Apps[0].Instances[0].PID != instance || st.Apps[0].Instances[0].State != "ready" {
				t.Errorf("the successor's status: %+v; want web's one instance, pid %d, ready", st, instance)
			}
			b, err := os.ReadFile(filepath.Join(f.dir, "data", "processes.json"))
			var rec processesDoc
			if err == nil {
				err = json.Unmarshal(b, &rec)
			}
			if err != nil || rec.Gatehouse.PID != succ {
				t.Errorf("processes.json names gatehouse pid %d (%v), want the successor, %d", rec.Gatehouse.PID, err, succ)
			}
			var gone []telemetry.Event
			testutil.WaitFor(t, 10*time.Second, "an upgrade_predecessor_gone event", func() bool {
				gone = nil
				begun := false
				for _, ev := range readEvents(t, filepath.Join(f.dir, "data", "events.log")) {
					begun = begun || ev.Type == telemetry.EventUpgradeBegin
					switch {
					case ev.Type == telemetry.EventUpgradePredecessorGone:
						gone = append(gone, ev)
					case begun && (ev.Type == telemetry.EventStart || ev.Type == telemetry.EventRestart || ev.Type == telemetry.EventExit):
						t.Fatalf("a %s event since the upgrade began: %+v; want the instance adopted as it runs", ev.Type, ev)
					}
				}
				return len(gone) > 0
			})
			if len(gone) != 1 || gone[0].PID != succ || !strings.Contains(gone[0].Detail, strconv.Itoa(old)) {
				t.Errorf("upgrade_predecessor_gone events %+v; want one, from pid %d, naming pid %d", gone, succ, old)
			}
			// The instance is the successor's: its stop stops it.
			if err := syscall.Kill(succ, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			testutil.WaitFor(t, 30*time.Second, "the successor to stop, and the app with it", func() bool {
				return !testutil.ProcessAlive(succ) && !testutil.ProcessAlive(instance)
			})
		})
	}
}

// readEvents reads an events.log.
func readEvents(t *testing.T, path string) []telemetry.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []telemetry.Event
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev telemetry.Event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatal(fmt.Errorf("events.log line %q: %w", l, err))
		}
		out = append(out, ev)
	}
	return out
}
