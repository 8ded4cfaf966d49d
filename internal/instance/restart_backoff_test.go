package instance

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/adoption"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/procstat"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// eventLog keeps the events an instance emits, for the test to count.
type eventLog struct {
	mu  sync.Mutex
	evs []telemetry.Event
}

func (l *eventLog) Emit(ev telemetry.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
}

func (l *eventLog) count(typ string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// noRecords keeps no record of the processes: nothing here is adopted.
type noRecords struct{}

func (noRecords) Started(adoption.ProcessRecord) {}
func (noRecords) Exited(string, string, int)     {}
func (noRecords) Token() string                  { return "" }
func (noRecords) Env() string                    { return "" }

// testHost is a Host for one app running cfg, with real ports, probes and
// processes, whose events go to events.
func testHost(t *testing.T, cfg *config.App, events *eventLog) *Host {
	t.Helper()
	dataDir := t.TempDir()
	return &Host{
		App: cfg.Name, Config: func() *config.App { return cfg }, Pool: pool.New(cfg.Name, 100),
		DataDir: dataDir, Events: events, Ports: NewPorts(), Records: noRecords{},
		StatusFiles: adoption.NewStatusFiles(dataDir, nil), Prober: probe.New(), Reader: procstat.NewReader(),
		Environ: func(map[string]string) []string { return os.Environ() }, Kick: func() {},
	}
}

// A start that fails at once (the app's dir or program broken by a
// deploy) after a process that served for a long while must still back
// off: the long run resets the sequence once, not for every failed start
// that follows, which would otherwise restart in a tight loop (an exit
// and a restart event, and a quarantined port, each turn).
func TestFailedStartsAfterALongRunBackOff(t *testing.T) {
	testutil.SkipInShort(t)
	bin := testutil.BuildBinary(t, testutil.FaultAppPkg)
	tests := []struct {
		name string
		// copied: the command is a copy of the program in the app's dir,
		// else the program itself, outside it.
		copied bool
		// breakStart makes the next start fail at once; dir is the app's
		// dir, prog its program's copy there.
		breakStart func(t *testing.T, dir, prog string)
	}{
		{
			name:   "app dir removed",
			copied: false,
			breakStart: func(t *testing.T, dir, prog string) {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name:   "program replaced by one the kernel cannot run",
			copied: true,
			breakStart: func(t *testing.T, dir, prog string) {
				os.Remove(prog)
				if err := os.WriteFile(prog, []byte("\x7fELF not a program"), 0o755); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "app")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			prog := filepath.Join(dir, "faultapp")
			b, err := os.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(prog, b, 0o755); err != nil {
				t.Fatal(err)
			}
			cfg := config.NewApp("web")
			cfg.Command = config.Command{bin}
			if tc.copied {
				cfg.Command = config.Command{prog}
			}
			cfg.Dir = dir
			cfg.Health.Path = "/healthz"
			cfg.Health.Interval = config.Duration(time.Hour) // no probe but the startup check
			cfg.StartTimeout = config.Duration(10 * time.Second)
			cfg.StopTimeout = config.Duration(5 * time.Second)
			events := &eventLog{}
			in := New(context.Background(), testHost(t, cfg, events), 1, cfg, Setup{})
			done := make(chan struct{})
			in.Start(func(*Instance) {}, func() { close(done) })
			defer func() {
				in.Stop(Hard)
				<-done
			}()
			testutil.WaitFor(t, 10*time.Second, "web-1 ready", func() bool { return in.State() == pool.Ready })

			// As if the process had served for resetAfter: the run that
			// ends next starts the back-off over.
			in.mu.Lock()
			in.readyAt = in.readyAt.Add(-resetAfter)
			pid := in.pid
			in.mu.Unlock()
			tc.breakStart(t, dir, prog)
			if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}

			// The crash restarts at once (the long run reset the
			// sequence); that start fails, and the next waits 1s, the one
			// after 2s: within 1.5s, 2 restarts (3 allowed for a slow machine).
			testutil.WaitFor(t, 5*time.Second, "the first restart", func() bool { return events.count(telemetry.EventRestart) >= 1 })
			time.Sleep(1500 * time.Millisecond) // deliberately: counting what a while brings
			if n := events.count(telemetry.EventRestart); n > 3 {
				t.Errorf("%d restarts within 1.5s of the crash; want at most 3 (0s, then 1s back-off)", n)
			}
			if s := in.Status(); !strings.Contains(s.Health, "could not start") {
				t.Errorf("health after the crash: %q; want the failed start's", s.Health)
			}
		})
	}
}
