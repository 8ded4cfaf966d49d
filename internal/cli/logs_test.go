package cli_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// stampedLine is one app line of `logs` as text: its time (RFC 3339 with
// milliseconds), its instance, and what the app wrote.
var stampedLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d) (\S+) \| (.*)$`)

// printLines has web print each of msgs, one request each, in order.
func (f *fixture) printLines(t *testing.T, msgs ...string) {
	t.Helper()
	for _, m := range msgs {
		resp, err := f.c.Get("http://" + f.listen + "/print?msg=" + url.QueryEscape(m))
		if err != nil {
			t.Fatal(err)
		}
		readBody(t, resp)
	}
}

// waitLastLine waits until the admin API's last line of web's output is
// want: every line printed before it has reached gatehouse.
func (f *fixture) waitLastLine(t *testing.T, want string) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, "web's last output line to be "+want, func() bool {
		resp, err := f.c.Get(f.adminURL + "/api/logs?app=web&lines=1")
		if err != nil {
			return false
		}
		var got struct{ Lines []admin.LogEntry }
		json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		return len(got.Lines) == 1 && got.Lines[0].Line == want
	})
}

// numbered is "PREFIX-01" … "PREFIX-n".
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%02d", prefix, i+1)
	}
	return out
}

// follower is a `gatehouse logs -f` running until the test ends.
type follower struct {
	cmd      *exec.Cmd
	out, err *syncBuffer
}

func startFollower(t *testing.T, dir string, args ...string) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	fl := &follower{out: &syncBuffer{}, err: &syncBuffer{}}
	fl.cmd = exec.CommandContext(ctx, testutil.BuildBinary(t, gatehousePkg), append([]string{"logs", "-f"}, args...)...)
	fl.cmd.Dir = dir
	fl.cmd.Stdout, fl.cmd.Stderr = fl.out, fl.err
	if err := fl.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		fl.cmd.Wait()
		if t.Failed() {
			t.Logf("logs -f %v stdout:\n%s\nstderr:\n%s", args, fl.out, fl.err)
		}
	})
	return fl
}

// appLines are the text lines of out that are app output, each checked
// for its time stamp, as instance | text.
func appLines(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		m := stampedLine.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("line %q has no time stamp, instance and text", l)
			continue
		}
		got = append(got, m[2]+" | "+m[3])
	}
	return got
}

// `logs -f` prints the last --lines lines, each stamped with its time
// and instance, and then the new ones as they come, as tail -f and
// kubectl logs -f --tail do; `logs --json` prints the same lines as JSON
// objects; `logs --lines N` prints N.
func TestLogsFollowPrintsTheLastLinesThenNewOnes(t *testing.T) {
	t.Parallel()
	f := runOneWebInstance(t, "")
	before := numbered("before", 15)
	f.printLines(t, before...)
	f.waitLastLine(t, before[14])

	fl := startFollower(t, f.dir, "web", "--lines", "3", "--admin", f.adminURL)
	testutil.WaitFor(t, 10*time.Second, "logs -f to print the last 3 lines", func() bool {
		return strings.Contains(fl.out.String(), before[14])
	})
	f.printLines(t, "after-01", "after-02")
	testutil.WaitFor(t, 10*time.Second, "logs -f to print the new lines", func() bool {
		return strings.Contains(fl.out.String(), "after-02")
	})
	want := []string{"web-1 | before-13", "web-1 | before-14", "web-1 | before-15", "web-1 | after-01", "web-1 | after-02"}
	if diff := cmp.Diff(want, appLines(t, fl.out.String())); diff != "" {
		t.Errorf("logs -f web --lines 3 (-want +got):\n%s", diff)
	}

	stdout, stderr, code := gatehouse(t, f.dir, "logs", "web", "--lines", "4", "--admin", f.adminURL)
	if code != 0 {
		t.Fatalf("logs --lines 4: exit %d: %s", code, stderr)
	}
	want = []string{"web-1 | before-14", "web-1 | before-15", "web-1 | after-01", "web-1 | after-02"}
	if diff := cmp.Diff(want, appLines(t, stdout)); diff != "" {
		t.Errorf("logs web --lines 4 (-want +got):\n%s", diff)
	}

	stdout, stderr, code = gatehouse(t, f.dir, "logs", "web", "--lines", "2", "--json", "--admin", f.adminURL)
	if code != 0 {
		t.Fatalf("logs --json: exit %d: %s", code, stderr)
	}
	var lines []string
	for l := range strings.SplitSeq(strings.TrimSpace(stdout), "\n") {
		var rec struct {
			Time                        string
			App, Instance, Stream, Line string
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("logs --json line %q: %v", l, err)
		}
		if _, err := time.Parse(time.RFC3339Nano, rec.Time); err != nil || rec.App != "web" || rec.Stream != "output" {
			t.Errorf("logs --json line %q: want an RFC 3339 time, app web, stream output", l)
		}
		lines = append(lines, rec.Instance+" | "+rec.Line)
	}
	if diff := cmp.Diff([]string{"web-1 | after-01", "web-1 | after-02"}, lines); diff != "" {
		t.Errorf("logs web --lines 2 --json (-want +got):\n%s", diff)
	}
}

// After gatehouse stopped, `logs` reads the instances' log files in its
// data_dir, says so on stderr, and prints their lines with the times they
// were written; -f follows the files as they grow.
func TestLogsOfAStoppedGatehouseReadTheFiles(t *testing.T) {
	t.Parallel()
	f := runOneWebInstance(t, "")
	lines := numbered("kept", 5)
	f.printLines(t, lines...)
	f.waitLastLine(t, lines[4])
	f.stop(t, 20*time.Second)

	stdout, stderr, code := gatehouse(t, f.dir, "logs", "web", "--lines", "0", "-c", f.cfgFile)
	if code != 0 {
		t.Fatalf("logs of a stopped gatehouse: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "stopped gatehouse") {
		t.Errorf("logs of a stopped gatehouse: stderr %q does not say it reads the files of a stopped gatehouse", stderr)
	}
	var got []string
	for l := range strings.SplitSeq(strings.TrimSpace(stdout), "\n") {
		m := stampedLine.FindStringSubmatch(l)
		if m != nil && strings.HasPrefix(m[3], "kept-") {
			got = append(got, m[2]+" | "+m[3])
		}
	}
	want := []string{"web-1 | kept-01", "web-1 | kept-02", "web-1 | kept-03", "web-1 | kept-04", "web-1 | kept-05"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("logs of a stopped gatehouse, stamped kept- lines (-want +got):\n%s\nstdout:\n%s", diff, stdout)
	}

	logFile := filepath.Join(f.dir, "data", "logs", "web", "web-1.log")
	fl := startFollower(t, f.dir, "web", "--lines", "1", "--json", "--data-dir", filepath.Join(f.dir, "data"))
	testutil.WaitFor(t, 10*time.Second, "logs -f --data-dir to print the last line", func() bool {
		return strings.Count(fl.out.String(), "\n") >= 1
	})
	fd, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	stamp := time.Date(2030, 1, 2, 3, 4, 5, 6e6, time.UTC)
	fmt.Fprintf(fd, "%s appended\n", stamp.Format("2006-01-02T15:04:05.000Z07:00"))
	fd.Close()
	testutil.WaitFor(t, 10*time.Second, "logs -f --data-dir to print the appended line", func() bool {
		return strings.Contains(fl.out.String(), "appended")
	})
	last := strings.Split(strings.TrimSpace(fl.out.String()), "\n")
	var rec struct {
		Time           time.Time
		Instance, Line string
	}
	if err := json.Unmarshal([]byte(last[len(last)-1]), &rec); err != nil || !rec.Time.Equal(stamp) || rec.Instance != "web-1" || rec.Line != "appended" {
		t.Errorf("logs -f --data-dir --json printed %q (%v); want web-1's line \"appended\" at %s", last[len(last)-1], err, stamp)
	}
}

// access_log: stdout puts the access entries on gatehouse's standard
// output, where a container runtime collects them, and not in data_dir.
func TestAccessLogToStdout(t *testing.T) {
	t.Parallel()
	f := runOneWebInstance(t, "access_log: stdout\n")
	f.printLines(t, "to-the-access-log")
	testutil.WaitFor(t, 10*time.Second, "the request's access entry on gatehouse's stdout", func() bool {
		for l := range strings.SplitSeq(f.g.stdout.String(), "\n") {
			var e struct{ Path, App string }
			if json.Unmarshal([]byte(l), &e) == nil && strings.HasPrefix(e.Path, "/print") && e.App == "web" {
				return true
			}
		}
		return false
	})
	f.stop(t, 20*time.Second)
	if _, err := os.Stat(filepath.Join(f.dir, "data", "access.log")); err == nil {
		t.Errorf("access_log: stdout, yet data/access.log was written")
	}
}

// log_format: json makes every line gatehouse itself writes on the run
// terminal a JSON object: its messages, the lifecycle events, and the
// instances' output.
func TestRunTerminalJSONFormat(t *testing.T) {
	t.Parallel()
	f := runOneWebInstance(t, "log_format: json\n")
	f.printLines(t, "json-terminal")
	testutil.WaitFor(t, 10*time.Second, "the app's line on the terminal", func() bool {
		return strings.Contains(f.g.stdout.String(), "json-terminal")
	})
	f.stop(t, 20*time.Second)
	for name, out := range map[string]string{"stderr": f.g.stderr.String(), "stdout": f.g.stdout.String()} {
		var msgs []string
		for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Errorf("%s line %q is not JSON: %v", name, l, err)
				continue
			}
			if _, ok := rec["time"]; !ok {
				t.Errorf("%s line %q has no time", name, l)
			}
			m, _ := rec["msg"].(string)
			msgs = append(msgs, m)
		}
		if name == "stderr" && (!slices.Contains(msgs, "gatehouse running") || !containsPrefix(msgs, "web-1 ")) {
			t.Errorf("stderr: want the startup message and web-1's lifecycle events among %q", msgs)
		}
	}
}

// In text format, gatehouse's own lines on the run terminal read one way,
// "15:04:05 WHAT key=value", and a reload's steps are printed once.
func TestRunTerminalTextPrintsAReloadStepOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.writeApps(t, f.webApp(1, nil, "1s", "2s"))
	f.run(t)
	waitReady(t, f.c, f.adminURL, "web", 1, f.g)
	f.writeApps(t, f.webApp(2, nil, "1s", "2s"))
	f.g.signal(t, syscall.SIGHUP)
	waitReady(t, f.c, f.adminURL, "web", 2, f.g)
	f.trackInstances()
	f.stop(t, 20*time.Second)
	out := f.g.stderr.String()
	if n := strings.Count(out, "instances 1 → 2: scaled"); n != 1 {
		t.Errorf("the reload step \"instances 1 → 2: scaled\" is printed %d times, want once:\n%s", n, out)
	}
	line := regexp.MustCompile(`^\d\d:\d\d:\d\d \S`)
	for l := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		if !line.MatchString(l) {
			t.Errorf("terminal line %q does not read \"15:04:05 WHAT\"", l)
		}
	}
}

// The log files of instances that no longer exist (an app removed from
// the config, web-7 after a scale-in) are removed once they are older
// than log_files.max_age; the current instances' are kept, however old,
// and so are recent ones.
func TestLogRetentionRemovesGoneInstancesLogs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	logs := filepath.Join(f.dir, "data", "logs")
	old := time.Now().Add(-30 * 24 * time.Hour)
	files := map[string]time.Time{
		"web/web-1.log": old,
		"web/web-7.log": old,
		"web/web-7-2026-01-02T03-04-05.000-size.log": old,
		"web/web-8.log":   time.Now(),
		"gone/gone-1.log": old,
	}
	for name, mtime := range files {
		p := filepath.Join(logs, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("2026-01-02T03:04:05.000Z old line\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	f.writeApps(t, f.webApp(1, nil, "1s", "2s", "log_files: {max_age: 240h}"))
	f.run(t)
	waitReady(t, f.c, f.adminURL, "web", 1, f.g)
	f.trackInstances()
	exists := func(name string) bool { _, err := os.Stat(filepath.Join(logs, name)); return err == nil }
	testutil.WaitFor(t, 10*time.Second, "the gone instances' logs to be removed", func() bool {
		return !exists("web/web-7.log") && !exists("gone")
	})
	if exists("web/web-7-2026-01-02T03-04-05.000-size.log") {
		t.Errorf("web-7's rotated log is kept; it goes with web-7")
	}
	for _, keep := range []string{"web/web-1.log", "web/web-8.log"} {
		if !exists(keep) {
			t.Errorf("%s was removed; want it kept (a current instance's, or written within max_age)", keep)
		}
	}
}

func containsPrefix(list []string, p string) bool {
	for _, l := range list {
		if strings.HasPrefix(l, p) {
			return true
		}
	}
	return false
}

// `logs -f --data-dir` follows an instance's log across its rotation
// (the file renamed, a new one started): the lines written to the old
// file after the last read and every line of the new file are printed,
// however large the new file already is when it is first seen.
func TestLogsFollowOfFilesKeepsEveryLineAcrossRotation(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	logs := filepath.Join(data, "logs", "web")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	logFile := filepath.Join(logs, "web-1.log")
	stamp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	line := func(i int, text string) string {
		return fmt.Sprintf("%s %s\n", stamp.Add(time.Duration(i)*time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00"), text)
	}
	if err := os.WriteFile(logFile, []byte(line(0, "before")), 0o644); err != nil {
		t.Fatal(err)
	}
	fl := startFollower(t, data, "web", "--lines", "1", "--data-dir", data)
	testutil.WaitFor(t, 10*time.Second, "logs -f --data-dir to print the last line", func() bool {
		return strings.Contains(fl.out.String(), "before")
	})
	// The last line of the old file, then the rotation as timberjack does
	// it: the file renamed, a new one in its place, here already longer
	// than the old one.
	fd, err := os.OpenFile(logFile, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fd.WriteString(line(1, "old-last"))
	fd.Close()
	if err := os.Rename(logFile, filepath.Join(logs, "web-1-2030-01-02T03-04-05.001-size.log")); err != nil {
		t.Fatal(err)
	}
	want := []string{"web-1 | before", "web-1 | old-last"}
	var fresh strings.Builder
	for i, s := range numbered("new", 5) {
		fresh.WriteString(line(2+i, s))
		want = append(want, "web-1 | "+s)
	}
	tmp := filepath.Join(data, "web-1.log.tmp")
	if err := os.WriteFile(tmp, []byte(fresh.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, logFile); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "logs -f --data-dir to print the new file's last line", func() bool {
		return strings.Contains(fl.out.String(), "new-05")
	})
	if diff := cmp.Diff(want, appLines(t, fl.out.String())); diff != "" {
		t.Errorf("logs -f --data-dir across a rotation (-want +got):\n%s", diff)
	}
}

// A gatehouse that adopts the instances a killed one left running keeps
// their logs, however long ago they were written: an instance beyond the
// configured count (web-2, which a reload made to replace web-1) is live
// as soon as it is adopted, not gone until the supervisor has it.
func TestLogRetentionKeepsAdoptedInstancesLogs(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	top := "log_files: {max_age: 240h}"
	f.writeApps(t, f.webApp(1, map[string]string{"V": "1"}, "1s", "2s", top))
	f.run(t)
	waitReady(t, f.c, f.adminURL, "web", 1, f.g)
	f.trackInstances()
	f.writeApps(t, f.webApp(1, map[string]string{"V": "2"}, "1s", "2s", top))
	if out, errOut, code := gatehouse(t, f.dir, "reload", "-c", f.cfgFile); code != 0 {
		t.Fatalf("reload: exit %d\n%s\n%s", code, out, errOut)
	}
	var id string
	testutil.WaitFor(t, 15*time.Second, "web-1 to be replaced by a ready instance", func() bool {
		st := status(f.c, f.adminURL)
		if st == nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1 {
			return false
		}
		in := st.Apps[0].Instances[0]
		id = in.ID
		return in.ID != "web-1" && in.State == "ready"
	})
	f.trackInstances()
	// Killed hard: the instance runs on, for the next gatehouse to adopt.
	if err := syscall.Kill(f.g.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-f.g.done
	logs := filepath.Join(f.dir, "data", "logs", "web")
	old := time.Now().Add(-30 * 24 * time.Hour)
	// web-9 is gone: its removal says the first pruning has run.
	if err := os.WriteFile(filepath.Join(logs, "web-9.log"), []byte("2026-01-02T03:04:05.000Z old line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{id + ".log", "web-9.log"} {
		if err := os.Chtimes(filepath.Join(logs, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	f.run(t)
	f.trackInstances()
	testutil.WaitFor(t, 15*time.Second, "the gone web-9's log to be removed", func() bool {
		_, err := os.Stat(filepath.Join(logs, "web-9.log"))
		return errors.Is(err, os.ErrNotExist)
	})
	if _, err := os.Stat(filepath.Join(logs, id+".log")); err != nil {
		t.Errorf("the adopted %s's log: %v; want it kept", id, err)
	}
	if st := status(f.c, f.adminURL); st == nil || len(st.Apps) != 1 || len(st.Apps[0].Instances) != 1 || st.Apps[0].Instances[0].ID != id {
		t.Errorf("status after the restart: %+v; want %s adopted", st, id)
	}
}

// runOneWebInstance runs a real gatehouse with one instance of the fault
// app as web (the config's top-level lines first, as given), and waits
// until it is ready.
func runOneWebInstance(t *testing.T, top string) *fixture {
	t.Helper()
	f := newFixture(t)
	f.writeApps(t, top+f.webApp(1, nil, "1s", "2s"))
	f.run(t)
	waitReady(t, f.c, f.adminURL, "web", 1, f.g)
	f.trackInstances()
	return f
}
