package cli_test

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/dumps"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// needDumpTools skips a dump test on a machine without what dumps use,
// unless GATEHOUSE_DUMP_TESTS=1 (CI) says they must be there.
func needDumpTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("GATEHOUSE_DUMP_TESTS") == "1" {
				t.Fatalf("%s not found, and GATEHOUSE_DUMP_TESTS=1 needs it", tool)
			}
			t.Skipf("%s not found (set GATEHOUSE_DUMP_TESTS=1 to make that a failure)", tool)
		}
	}
}

// dumpCLI runs `gatehouse dump` with args, bounded by 2m.
func dumpCLI(t *testing.T, f *fixture, args ...string) cliResult {
	t.Helper()
	return adminCLI(t, f, 2*time.Minute, nil, "dump", args...)
}

// load sends requests to the fixture's listener until stopped, counting
// the ones that did not get a 200.
type load struct {
	ok, failed atomic.Int64
	// slowest is the longest a request took, in nanoseconds.
	slowest  atomic.Int64
	mu       sync.Mutex
	failures []string
	stop     chan struct{}
	done     chan struct{}
}

func startLoad(t *testing.T, f *fixture, clients int) *load {
	t.Helper()
	l := &load{stop: make(chan struct{}), done: make(chan struct{})}
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := httpClient(t, 30*time.Second)
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				start := time.Now()
				resp, err := c.Get("http://" + f.listen + "/")
				if d := int64(time.Since(start)); d > l.slowest.Load() {
					l.slowest.Store(d)
				}
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					l.failed.Add(1)
					l.mu.Lock()
					l.failures = append(l.failures, fmt.Sprint(err, resp))
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	go func() { wg.Wait(); close(l.done) }()
	return l
}

func (l *load) end(t *testing.T) (ok, failed int64) {
	t.Helper()
	close(l.stop)
	<-l.done
	if n := l.failed.Load(); n > 0 {
		t.Errorf("%d requests failed during dumps, first: %s", n, l.failures[0])
	}
	return l.ok.Load(), l.failed.Load()
}

const nodeServer = `const http = require('http');
function answerRequest(req, res) { res.end('ok ' + process.pid); }
http.createServer(answerRequest).listen(Number(process.env.PORT), '127.0.0.1');
`

// Dumps of a Node instance, each kind, while clients keep sending
// requests: the instance is out of rotation while it is paused, so no
// request fails; a core is a gzipped core file with the executable
// named, a heap snapshot parses as one, stacks are printed; the cap
// keeps max_count dumps and says which it removed.
func TestDumpsOfANodeInstanceLoseNoRequest(t *testing.T) {
	needDumpTools(t, "node", "gdb", "gcore")
	t.Parallel()
	f := newFixture(t)
	if err := os.WriteFile(filepath.Join(f.dir, "server.js"), []byte(nodeServer), 0o644); err != nil {
		t.Fatal(err)
	}
	f.writeApps(t, `dumps: {max_count: 3, drain_timeout: 5s}
apps:
  web:
    command: [node, server.js]
    instances: 2
    health: {path: /, interval: 200ms}
`)
	f.run(t)
	waitReady(t, f.c, f.adminURL, "web", 2, f.g)
	f.trackInstances()

	l := startLoad(t, f, 4)
	var names []string
	for _, tc := range []struct {
		kind  string
		check func(t *testing.T, path string)
	}{
		{"core", checkCore},
		{"heap", checkHeapSnapshot},
	} {
		got := dumpCLI(t, f, "web/1", "--kind", tc.kind, "-o", f.dir)
		if got.Code != 0 {
			t.Fatalf("gatehouse dump --kind %s: %+v", tc.kind, got)
		}
		m := lastDump(t, f)
		names = append(names, m.Name)
		t.Logf("%s: paused %dms, drained %dms, %d bytes", tc.kind, m.PausedMS, m.DrainedMS, m.Size)
		if m.Kind != tc.kind || m.Runtime != "node" || m.Instance != "web-1" || m.PausedMS <= 0 {
			t.Errorf("%s dump: %+v, want a node dump of web-1 with its pause", tc.kind, m)
		}
		if !strings.Contains(got.Stderr, "paused at most") {
			t.Errorf("gatehouse dump said %q, want the pause", got.Stderr)
		}
		tc.check(t, filepath.Join(f.dir, m.Name))
		progress(t, &l.ok, 20, "requests answered by web-2 during and after the "+tc.kind+" dump")
	}
	got := dumpCLI(t, f, "web/1", "--kind", "stacks")
	if got.Code != 0 || got.Stdout == "" || !strings.Contains(got.Stderr, "stacks of web-1 (pid") {
		t.Errorf("gatehouse dump --kind stacks: %+v", got)
	}
	names = append(names, lastDump(t, f).Name)
	// A fourth dump: max_count 3 removes the first.
	if got := dumpCLI(t, f, "web/2", "--kind", "stacks"); got.Code != 0 {
		t.Fatalf("fourth dump: %+v", got)
	}
	ok, _ := l.end(t)
	t.Logf("%d requests answered during the dumps, the slowest in %s", ok, time.Duration(l.slowest.Load()))
	// events.log is written behind the events: wait for the last dump's.
	var evs []telemetry.Event
	testutil.WaitFor(t, 10*time.Second, "four dump events and a dump_removed in events.log", func() bool {
		evs = readEvents(t, filepath.Join(f.dir, "data", "events.log"))
		n, removed := 0, 0
		for _, e := range evs {
			switch e.Type {
			case telemetry.EventDump:
				n++
			case telemetry.EventDumpRemoved:
				removed++
			}
		}
		return n >= 4 && removed >= 1
	})
	noRequestWhileHeld(t, f, evs, ok)

	list := dumpCLI(t, f, "--list")
	if strings.Contains(list.Stdout, names[0]) || !strings.Contains(list.Stdout, names[1]) || strings.Count(list.Stdout, "\n") != 4 {
		t.Errorf("gatehouse dump --list after four dumps with max_count 3:\n%s", list.Stdout)
	}
	var removed, started, taken int
	for _, e := range evs {
		switch e.Type {
		case telemetry.EventDumpRemoved:
			removed++
			if e.Value != names[0] || e.Trigger != "max_count" {
				t.Errorf("dump_removed %+v, want %s by max_count", e, names[0])
			}
		case telemetry.EventDumpStarted:
			started++
		case telemetry.EventDump:
			taken++
		}
	}
	if removed != 1 || started != 4 || taken != 4 {
		t.Errorf("events: %d dump_started, %d dump, %d dump_removed; want 4, 4, 1", started, taken, removed)
	}
}

// lastDump is the newest dump the admin API lists.
func lastDump(t *testing.T, f *fixture) dumps.Meta {
	t.Helper()
	resp, err := f.c.Get(f.adminURL + "/api/dumps")
	if err != nil {
		t.Fatal(err)
	}
	var out admin.DumpsResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(out.Dumps) == 0 {
		t.Fatal("no dumps listed")
	}
	return out.Dumps[len(out.Dumps)-1]
}

// checkCore: a gzipped core file that gdb loads against the executable.
func checkCore(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	core := filepath.Join(t.TempDir(), "core")
	out, err := os.Create(core)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	out.Close()
	exe, err := exec.LookPath("node")
	if err != nil {
		t.Fatal(err)
	}
	exe, _ = filepath.EvalSymlinks(exe)
	gdb, err := exec.Command("gdb", "-batch", "-ex", "bt", exe, core).CombinedOutput()
	if err != nil || !strings.Contains(string(gdb), "#0") || strings.Contains(string(gdb), "not a core dump") {
		t.Errorf("gdb -batch -ex bt %s %s: %v\n%s", exe, core, err, tail(string(gdb)))
	}
}

// checkHeapSnapshot: JSON with snapshot.meta, as Chrome DevTools loads.
func checkHeapSnapshot(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var snap struct {
		Snapshot struct {
			Meta map[string]json.RawMessage `json:"meta"`
		} `json:"snapshot"`
	}
	if err := json.Unmarshal(b, &snap); err != nil || len(snap.Snapshot.Meta) == 0 {
		t.Errorf("%s (%d bytes) is not a heap snapshot: %v", path, len(b), err)
	}
}

// noRequestWhileHeld checks the access log: no request reached an
// instance between its dump_started and its dump (or dump_failed)
// events, when it was out of rotation. Without the hold, requests wait
// on the paused process (slow, not failed).
func noRequestWhileHeld(t *testing.T, f *fixture, evs []telemetry.Event, answered int64) {
	t.Helper()
	type window struct{ from, to time.Time }
	held := map[string][]window{}
	for _, e := range evs {
		switch e.Type {
		case telemetry.EventDumpStarted:
			held[e.Instance] = append(held[e.Instance], window{from: e.Time})
		case telemetry.EventDump, telemetry.EventDumpFailed:
			ws := held[e.Instance]
			ws[len(ws)-1].to = e.Time
		}
	}
	// The access log is written behind the requests.
	var entries []struct {
		Time     time.Time
		Instance string
	}
	testutil.WaitFor(t, 10*time.Second, "the access log's lines", func() bool {
		b, err := os.ReadFile(filepath.Join(f.dir, "data", "access.log"))
		if err != nil {
			return false
		}
		entries = entries[:0]
		for line := range strings.Lines(string(b)) {
			var e struct {
				Time     time.Time
				Instance string
			}
			if json.Unmarshal([]byte(line), &e) == nil {
				entries = append(entries, e)
			}
		}
		return int64(len(entries)) >= answered
	})
	// A request picked as the hold began arrived a moment before it.
	const slack = 50 * time.Millisecond
	for _, e := range entries {
		for _, w := range held[e.Instance] {
			if e.Time.After(w.from.Add(slack)) && e.Time.Before(w.to) {
				t.Errorf("a request reached %s at %s, while it was held for a dump (%s to %s)", e.Instance,
					e.Time.Format("15:04:05.000"), w.from.Format("15:04:05.000"), w.to.Format("15:04:05.000"))
				return
			}
		}
	}
}

// A Go program prints its goroutines only on SIGQUIT, which ends it:
// gatehouse dump refuses to unless --allow-exit says so, then gives the
// goroutines from the instance's output, and the instance is started
// again.
func TestDumpOfAGoInstanceEndsItOnlyWhenAllowed(t *testing.T) {
	t.Parallel()
	f := execFixture(t)
	pid := f.instancePID(t)
	refused := dumpCLI(t, f, "web", "--kind", "stacks")
	if refused.Code == 0 || !strings.Contains(refused.Stderr, "--allow-exit") {
		t.Errorf("stacks of a Go app without --allow-exit: %+v, want a refusal naming --allow-exit", refused)
	}
	if f.instancePID(t) != pid {
		t.Fatal("the refused dump ended the instance")
	}
	got := dumpCLI(t, f, "web/1", "--kind", "stacks", "--allow-exit")
	if got.Code != 0 || !strings.Contains(got.Stdout, "goroutine 1") || !strings.Contains(got.Stderr, "the process ended") {
		t.Fatalf("stacks with --allow-exit: code %d, stderr %q, stdout:\n%s", got.Code, got.Stderr, tail(got.Stdout))
	}
	waitReady(t, f.c, f.adminURL, "web", 1, f.g)
	testutil.WaitFor(t, 15*time.Second, "web-1 started again", func() bool {
		st := status(f.c, f.adminURL)
		return st != nil && st.Apps[0].Instances[0].PID != pid && st.Apps[0].Instances[0].State == "ready"
	})
	f.trackInstances()
}

// auto_heal's action dump takes the dump while the instance is out of
// rotation, then recycles it.
func TestAutoHealDumpsBeforeItRecycles(t *testing.T) {
	needDumpTools(t, "gdb", "gcore")
	t.Parallel()
	f := newFixture(t)
	f.writeApps(t, f.webApp(1, nil, "1s", "2s")+`    auto_heal:
      action: dump
      triggers:
        status_codes: [{status: "500", count: 1, interval: 1m}]
`)
	f.run(t)
	waitReady(t, f.c, f.adminURL, "web", 1, f.g)
	f.trackInstances()
	resp, err := f.c.Get("http://" + f.listen + "/status?code=500")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var order []string
	testutil.WaitFor(t, 60*time.Second, "the dump, then the recycle", func() bool {
		order = order[:0]
		for _, e := range readEvents(t, filepath.Join(f.dir, "data", "events.log")) {
			switch e.Type {
			case telemetry.EventDump, telemetry.EventDumpFailed, telemetry.EventRecycle:
				order = append(order, e.Type+" "+e.Trigger)
			}
		}
		return len(order) >= 2
	})
	if len(order) < 2 || !strings.HasPrefix(order[0], "dump auto-heal status_codes: ") || !strings.HasPrefix(order[1], "recycle") {
		t.Errorf("events %q, want the dump by auto-heal, then the recycle", order)
	}
	f.trackInstances()
}

// Where a dump is to be saved is checked before the process is paused:
// a file that exists, or a directory that does not, is refused with no
// dump taken.
func TestDumpOutputCheckedBeforeTheDump(t *testing.T) {
	t.Parallel()
	f := execFixture(t)
	exists := filepath.Join(f.dir, "exists.txt")
	if err := os.WriteFile(exists, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{exists, filepath.Join(f.dir, "no", "such", "dir", "core.gz")} {
		got := dumpCLI(t, f, "web", "--kind", "core", "-o", out)
		if got.Code != 2 || !strings.Contains(got.Stderr, "-o") {
			t.Errorf("-o %s: %+v, want a usage refusal naming -o", out, got)
		}
	}
	if list := dumpCLI(t, f, "--list"); !strings.Contains(list.Stdout, "no dumps kept") {
		t.Errorf("a refused -o took a dump:\n%s", list.Stdout)
	}
}
