package cli

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// Each lifecycle event is one readable terminal line; an exit and its
// restart are merged into one.
func TestPrintLifecycle(t *testing.T) {
	t.Parallel()
	code := 1
	at := time.Date(2026, 1, 2, 12, 0, 1, 0, time.Local)
	evs := []telemetry.Event{
		{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventStart, Detail: "started node with PORT=1234"},
		{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventReady, Detail: "ready in 120ms: GET /healthz 200 in 2ms"},
		{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventExit, ExitCode: &code, Detail: "exited with code 1; 2 requests failed with it",
			Output: []string{"listening", "Error: boom", ""}},
		{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventRestart, Detail: "restart #3 after 2s back-off (last run lasted 5s)"},
		{Time: at, App: "web", Instance: "web-2", Type: telemetry.EventStartTimeout, Detail: "not ready within start_timeout 30s; last check: connect: connection refused"},
		{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventUnhealthy, Detail: "GET /healthz 500 in 3ms (3 failed probes in a row)"},
		{Time: at, App: "web", Instance: "web-1", Type: telemetry.EventAutoHeal, Trigger: "memory", Detail: "recycling: private bytes 600MiB ≥ 512MiB"},
		{Time: at, App: "web", Type: telemetry.EventReload, Detail: "web-1 replaced by web-3"},
		{Time: at, Type: telemetry.EventCertFailed, Value: "app.example.com", Trigger: "obtain",
			Detail: "app.example.com: obtaining the certificate from https://ca/dir failed: connection: connection refused"},
		{Time: at, Type: telemetry.EventCertChainIncomplete, Value: "site.example.com",
			Detail: "site.example.com: cert_file /etc/site.pem holds the certificate without the intermediate certificate of its issuer"},
		{Time: at, App: "web", Instance: "web-4", Type: telemetry.EventExit, Detail: `could not start: exec: "nodex": executable file not found in $PATH`},
	}
	ch := make(chan telemetry.Event, len(evs))
	for _, e := range evs {
		ch <- e
	}
	close(ch)
	var out bytes.Buffer
	printLifecycle(&out, ch)
	want := []string{
		`12:00:01 web-1 ready in 120ms: GET /healthz 200 in 2ms`,
		`12:00:01 web-1 exited with code 1 (last output: "Error: boom"; 2 requests failed with it) — restarting in 2s (restart 3)`,
		`12:00:01 web-2 killed: not ready within start_timeout 30s (last check: connect: connection refused)`,
		`12:00:01 web-1 unhealthy: GET /healthz 500 in 3ms (3 failed probes in a row)`,
		`12:00:01 web-1 auto-heal: recycling: private bytes 600MiB ≥ 512MiB`,
		`12:00:01 web reload: web-1 replaced by web-3`,
		`12:00:01 tls app.example.com: obtaining the certificate from https://ca/dir failed: connection: connection refused`,
		`12:00:01 tls site.example.com: cert_file /etc/site.pem holds the certificate without the intermediate certificate of its issuer`,
		`12:00:01 web-4 could not start: exec: "nodex": executable file not found in $PATH`,
	}
	got := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("terminal lines:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// An exit whose restart does not follow is printed on its own after
// mergeWait, not held forever.
func TestPrintLifecycleLoneExit(t *testing.T) {
	t.Parallel()
	// In a bubble, the clock moves on as soon as every goroutine waits.
	synctest.Test(t, func(t *testing.T) {
		ch := make(chan telemetry.Event, 1)
		ch <- telemetry.Event{Time: time.Now(), App: "web", Instance: "web-1", Type: telemetry.EventExit, Detail: "killed by SIGKILL"}
		var mu testutil.LockedBuffer
		done := make(chan struct{})
		go func() { defer close(done); printLifecycle(&mu, ch) }()
		<-time.After(5 * time.Second)
		synctest.Wait()
		if !regexp.MustCompile(`web-1 killed by SIGKILL\n`).MatchString(mu.String()) {
			t.Fatalf("lone exit not printed within 5s; got %q", mu.String())
		}
		close(ch)
		<-done
	})
}

// The exit line quotes what the app said about its death, not the last
// line of a stack trace.
func TestLastOutput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		out  []string
		want string
	}{
		{"plain", []string{"starting", "listening on :8080", "bye"}, "bye"},
		{"go panic", []string{"listening", "panic: unhandled exception in POST /crash", "", "goroutine 1 [running]:", "main.crash()", "\t/app/main.go:12 +0x25"},
			"panic: unhandled exception in POST /crash"},
		{"python traceback", []string{"Traceback (most recent call last):", `  File "app.py", line 3, in <module>`, "ValueError: boom"}, "ValueError: boom"},
		{"node throw", []string{"/app/server.js:10", "    throw new Error('boom');", "    ^", "", "Error: boom", "    at Server.<anonymous> (/app/server.js:10:11)", "", "Node.js v20.20.2"}, "Error: boom"},
		{"java", []string{`Exception in thread "main" java.lang.IllegalStateException: boom`, "\tat App.main(App.java:5)"}, `Exception in thread "main" java.lang.IllegalStateException: boom`},
		{"no error word", []string{"ErrorHandler registered", "shutting down"}, "shutting down"},
		{"nothing", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lastOutput(tt.out); got != tt.want {
				t.Errorf("lastOutput = %q, want %q", got, tt.want)
			}
		})
	}
}
