package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/supervisor"
	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// A reload applies what it can and names what takes a new gatehouse
// process: it never keeps an old value silently, to be applied by
// whichever upgrade or restart comes next. A rolling reload fails no
// request.

// configFile is a gatehouse.yaml that a test rewrites between reloads:
// one fault-app instance, after extra top-level keys.
type configFile struct {
	t        *testing.T
	path     string
	bin, dir []byte // JSON strings: the fault app, the data_dir
}

func newConfigFile(t *testing.T) *configFile {
	t.Helper()
	dir := t.TempDir()
	bin, _ := json.Marshal(testutil.BuildBinary(t, testutil.FaultAppPkg))
	dd, _ := json.Marshal(filepath.Join(dir, "data"))
	return &configFile{t: t, path: filepath.Join(dir, "gatehouse.yaml"), bin: bin, dir: dd}
}

// write replaces the file, with extra (YAML lines) before apps:.
func (f *configFile) write(extra string) {
	f.t.Helper()
	yaml := fmt.Sprintf("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\ndata_dir: %s\n%sapps:\n  web:\n    command: [%s]\n    health: {path: /healthz}\n", f.dir, extra, f.bin)
	if err := os.WriteFile(f.path, []byte(yaml), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// start writes the file with extra, runs gatehouse from it and waits for
// its instance.
func (f *configFile) start(extra string) *harness.Gatehouse {
	f.t.Helper()
	f.write(extra)
	cfg, err := config.Load(f.path)
	if err != nil {
		f.t.Fatal(err)
	}
	g := harness.Start(f.t, cfg)
	g.WaitReady(f.t, "web", 1, 20*time.Second)
	return g
}

// reload reloads app ("" for all) from the file and returns what the
// reload said.
func reload(t *testing.T, g *harness.Gatehouse, app string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var said []string
	if err := g.Srv.Reload(ctx, app, func(format string, args ...any) { said = append(said, fmt.Sprintf(format, args...)) }); err != nil {
		t.Fatalf("reload: %v", err)
	}
	return said
}

// reloadErr reloads every app from the file, within d, and returns the
// reload's error.
func reloadErr(g *harness.Gatehouse, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return g.Srv.Reload(ctx, "", func(string, ...any) {})
}

// webUnchanged fails t unless web-1 is still the process before was and
// web's config has no RELOADED in its env: a refused reload changed
// neither.
func webUnchanged(t *testing.T, g *harness.Gatehouse, before supervisor.InstanceStatus) {
	t.Helper()
	after, ok := instance(g, "web-1")
	if !ok || after.PID != before.PID {
		t.Errorf("web-1 was pid %d, now %d (present %v): a refused reload replaced it", before.PID, after.PID, ok)
	}
	web, _ := g.Srv.App("web")
	if env := web.Config().Env; env["RELOADED"] != "" {
		t.Errorf("web's config has the refused reload's env %v", env)
	}
}

// saysNewProcess reports whether one of said names key as taking a new
// gatehouse process.
func saysNewProcess(said []string, key string) bool {
	return slices.ContainsFunc(said, func(m string) bool {
		return strings.Contains(m, key) && strings.Contains(m, "new gatehouse process")
	})
}

// The public listeners' limits (head, keep-alive and send timeouts,
// request head size, connection bound), the admin token and the sampling
// interval are read once, when the process starts: a reload that changes
// one says it takes a new process.
func TestReloadNamesEveryKeyThatTakesANewProcess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ key, yaml string }{
		{"limits", "limits: {keepalive_timeout: 7s}\n"},
		{"admin_token", "admin_token: s3cret\n"},
		{"sample_interval", "sample_interval: 3s\n"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			t.Parallel()
			f := newConfigFile(t)
			g := f.start("")
			f.write(tc.yaml)
			if said := reload(t, g, ""); !saysNewProcess(said, tc.key) {
				t.Errorf("%s changed; reload said %q", tc.key, said)
			}
		})
	}
}

// A reload that changes trusted_proxies or proxy_protocol says that they
// take a restart: the listener and the gateway keep the ones they started
// with. A reload that changes neither says nothing of them.
func TestReloadTrustedProxiesNeedsRestart(t *testing.T) {
	t.Parallel()
	f := newConfigFile(t)
	g := f.start("")
	for _, extra := range []string{"", "trusted_proxies: [10.0.0.0/8]\n", "trusted_proxies: [10.0.0.0/8]\nproxy_protocol: true\n"} {
		f.write(extra)
		if said := reload(t, g, "web"); saysNewProcess(said, "trusted_proxies") != (extra != "") {
			t.Errorf("reload with %q said %q", extra, said)
		}
	}
}

// Reload says that a tls: change (here cert_file and key_file pointed at
// a new pair) takes a restart, rather than re-reading the old files
// silently.
func TestReloadReportsTLSChange(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t, "reload CA")
	tlsYAML := func(names ...string) string {
		cert, key := testutil.KeyPairFiles(t, ca.Issue(t, testutil.Leaf{Names: names}))
		c, _ := json.Marshal(cert)
		k, _ := json.Marshal(key)
		return fmt.Sprintf("tls:\n  listen: \"127.0.0.1:0\"\n  redirect_http: false\n  cert_file: %s\n  key_file: %s\n", c, k)
	}
	f := newConfigFile(t)
	g := f.start(tlsYAML("127.0.0.1", "old.example"))
	f.write(tlsYAML("127.0.0.1", "new.example"))
	said := reload(t, g, "")
	c, err := tls.Dial("tcp", g.Srv.TLSAddr(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	names := c.ConnectionState().PeerCertificates[0].DNSNames
	c.Close()
	t.Logf("reload said %q; HTTPS serves %v", said, names)
	if !slices.ContainsFunc(said, func(m string) bool { return strings.Contains(m, "tls") }) {
		t.Errorf("tls.cert_file/key_file changed, reload said nothing (the doc says it reports a tls: change); the listener still serves %v", names)
	}
}

// Drains hold over HTTP/2 as over HTTP/1.1. A rolling reload replaces both
// instances while clients keep HTTP/2 connections busy with GETs and
// POSTs: none fails, though every instance they were served by is drained
// and stopped.
func TestRollingReloadUnderHTTP2Load(t *testing.T) {
	t.Parallel()
	var roots *x509.CertPool
	g := serving(t, 2, func(cfg *config.Config, _ *config.App) { roots = harness.TLS(t, cfg) })

	l := startLoad(t, 4, func(int) *http.Client { return harness.H2Client(roots, 10*time.Second) },
		func(c *http.Client, w, i int) error { return h2Request(c, g.SecureURL, (w+i)%2 == 0) })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := g.Srv.Reload(ctx, "", func(string, ...any) {}); err != nil {
		t.Fatalf("reload: %v", err)
	}
	l.waitMore(t, 40, "after the reload") // on the new instances too, not just up to the last drain
	l.end()
	if n := l.failed.Load(); n > 0 {
		t.Errorf("%d of %d HTTP/2 requests failed during a rolling reload; last: %v", n, l.sent.Load(), l.last())
	}
	if len(g.Events("stop")) < 2 && len(g.Events("exit")) < 2 {
		t.Errorf("the reload replaced no instance: events %v", g.Events())
	}
	t.Logf("%d HTTP/2 requests during the reload, %d failed", l.sent.Load(), l.failed.Load())
}

// h2Request sends a GET, or a POST echoed back, and checks the answer
// came over HTTP/2 and whole.
func h2Request(c *http.Client, base string, post bool) error {
	var resp *http.Response
	var err error
	const body = "drain me not"
	if post {
		resp, err = c.Post(base+"/echo", "text/plain", strings.NewReader(body))
	} else {
		resp, err = c.Get(base + "/")
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return &statusError{resp.Status, resp.Header.Get("Gatehouse-Cause")}
	case resp.ProtoMajor != 2:
		return &statusError{"answered over " + resp.Proto, ""}
	case post && string(b) != body:
		return &statusError{"echo differs: " + string(b), ""}
	}
	return nil
}

type statusError struct{ status, cause string }

func (e *statusError) Error() string { return e.status + " " + e.cause }

// A reload whose routes the gateway cannot build (here a static root
// that does not exist, which only gatehouse run's preflight checks) is
// refused as a whole, with the file, line and key of the problem, as
// gatehouse run names it: the running instances are not replaced for the
// env it also changes, and the app keeps its previous config.
func TestReloadWithUnbuildableRoutesChangesNothing(t *testing.T) {
	t.Parallel()
	f := newConfigFile(t)
	g := f.start("")
	before, ok := instance(g, "web-1")
	if !ok {
		t.Fatal("no web-1")
	}
	missing, _ := json.Marshal(filepath.Join(t.TempDir(), "missing"))
	yaml := fmt.Sprintf("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\ndata_dir: %s\napps:\n  web:\n    command: [%s]\n    health: {path: /healthz}\n"+
		"    env: {RELOADED: \"1\"}\n    routes:\n      - /\n      - {match: /assets/, static: {root: %s}}\n", f.dir, f.bin, missing)
	if err := os.WriteFile(f.path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	err := reloadErr(g, 30*time.Second)
	if err == nil || !strings.Contains(err.Error(), "gatehouse.yaml:11: apps.web.routes[1].static.root: ") {
		t.Fatalf("reload = %v, want the static root's error at its file, line and key", err)
	}
	webUnchanged(t, g, before)
}

// A reload of every app that one app refuses (api switches from command
// to upstreams, which takes a restart) is refused as a whole: web, whose
// own change would apply, keeps its instance and its config too.
func TestReloadOneAppRefusesChangesNoApp(t *testing.T) {
	t.Parallel()
	f := newConfigFile(t)
	write := func(web, api string) {
		t.Helper()
		yaml := fmt.Sprintf("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\ndata_dir: %s\napps:\n"+
			"  web:\n    command: [%s]\n    health: {path: /healthz}\n    routes: [/]\n%s"+
			"  api:\n    health: {path: /healthz}\n    routes: [/api/]\n%s", f.dir, f.bin, web, api)
		if err := os.WriteFile(f.path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("", fmt.Sprintf("    command: [%s]\n", f.bin))
	cfg, err := config.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 20*time.Second)
	g.WaitReady(t, "api", 1, 20*time.Second)
	before, ok := instance(g, "web-1")
	if !ok {
		t.Fatal("no web-1")
	}

	write("    env: {RELOADED: \"1\"}\n", "    upstreams: [\"127.0.0.1:1\"]\n")
	if err := reloadErr(g, 30*time.Second); !errors.Is(err, supervisor.ErrNeedsRestart) {
		t.Fatalf("reload = %v, want api's switch refused", err)
	}
	webUnchanged(t, g, before)
}

// A reload whose settings apply but whose added instance does not start
// fails, naming the instance, and leaves the gateway on the settings the
// supervisor now runs with (max_inflight here), not on the previous
// ones: the two halves of the app agree.
func TestReloadThatScalesShortAppliesItsSettingsEverywhere(t *testing.T) {
	t.Parallel()
	f := newConfigFile(t)
	var bin string
	if err := json.Unmarshal(f.bin, &bin); err != nil {
		t.Fatal(err)
	}
	// Only web-1 starts: every other instance exits at once.
	cmd, _ := json.Marshal(fmt.Sprintf(`if [ "$GATEHOUSE_INSTANCE" = web-1 ]; then exec '%s'; fi; exit 3`, bin))
	write := func(instances, maxInflight int) {
		t.Helper()
		yaml := fmt.Sprintf("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\ndata_dir: %s\napps:\n  web:\n    command: %s\n"+
			"    health: {path: /healthz}\n    instances: %d\n    max_inflight: %d\n", f.dir, cmd, instances, maxInflight)
		if err := os.WriteFile(f.path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(1, 10)
	cfg, err := config.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 20*time.Second)

	write(2, 20)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := g.Srv.Reload(ctx, "web", func(string, ...any) {}); err == nil || !strings.Contains(err.Error(), "web-2") {
		t.Fatalf("reload = %v, want web-2's failure", err)
	}
	app, _ := g.Srv.App("web")
	if got := [2]int{app.Config().MaxInflight, app.Pool().MaxInflight()}; got != [2]int{20, 20} {
		t.Errorf("max_inflight: the supervisor's config %d, the gateway's %d; want both the reloaded 20", got[0], got[1])
	}
}

// A reload of every app while one of them is busy with an operation of
// its own (here a rolling reload of api whose new instance is slow to
// start; a scale, recycle or restart is the same) is refused as a
// whole: web, which was free, is not reloaded alone first.
func TestReloadWhileOneAppIsBusyChangesNoApp(t *testing.T) {
	t.Parallel()
	f := newConfigFile(t)
	write := func(web string) {
		t.Helper()
		yaml := fmt.Sprintf("listen: \"127.0.0.1:0\"\nadmin: \"127.0.0.1:0\"\ndata_dir: %s\napps:\n"+
			"  web:\n    command: [%s]\n    health: {path: /healthz}\n    routes: [/]\n%s"+
			"  api:\n    command: [%s]\n    health: {path: /healthz}\n    routes: [/api/]\n", f.dir, f.bin, web, f.bin)
		if err := os.WriteFile(f.path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	cfg, err := config.Load(f.path)
	if err != nil {
		t.Fatal(err)
	}
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 1, 20*time.Second)
	g.WaitReady(t, "api", 1, 20*time.Second)
	before, ok := instance(g, "web-1")
	if !ok {
		t.Fatal("no web-1")
	}

	// api's own reload holds it until its new instance starts, which
	// this one does not until the test ends.
	api, err := g.Srv.App("api")
	if err != nil {
		t.Fatal(err)
	}
	slow := *api.Config()
	slow.Env = map[string]string{"FAULT_START_DELAY": "1h"}
	busyCtx, stopBusy := context.WithCancel(context.Background())
	busy := make(chan error, 1)
	go func() { busy <- api.Reload(busyCtx, &slow, func(string, ...any) {}) }()
	defer func() {
		stopBusy()
		<-busy
	}()
	waitEvent(t, g, 20*time.Second, "reload", "", func(e telemetry.Event) bool {
		return e.App == "api" && strings.HasPrefix(e.Detail, "rolling reload")
	})

	write("    env: {RELOADED: \"1\"}\n")
	if err := reloadErr(g, 60*time.Second); !errors.Is(err, supervisor.ErrBusy) {
		t.Fatalf("reload = %v, want it refused: api is busy", err)
	}
	webUnchanged(t, g, before)
}
