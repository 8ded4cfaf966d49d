package cli_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// initRuntimesInstall installs the runtimes the sample apps under
// testdata/init run on, from Debian's packages.
const initRuntimesInstall = "apt-get update && apt-get install -y --no-install-recommends " +
	"nodejs node-express python3-fastapi uvicorn python3-flask gunicorn"

// debianNodePath is where Debian's node-* packages install modules; a
// Node.js from elsewhere (NodeSource's) does not look there by itself.
const debianNodePath = "/usr/share/nodejs"

// needRuntime returns the environment the sample app in dir needs to
// run, from check. A runtime that is missing skips the test, or fails it
// where GATEHOUSE_INIT_RUNTIMES=1 says the runtimes are installed (CI).
func needRuntime(t *testing.T, dir string, check func(dir string) ([]string, error)) []string {
	t.Helper()
	env, err := check(dir)
	if err == nil {
		return env
	}
	if os.Getenv("GATEHOUSE_INIT_RUNTIMES") == "1" {
		t.Fatalf("runtime missing though GATEHOUSE_INIT_RUNTIMES=1: %v", err)
	}
	t.Skipf("runtime missing: %v; install them with: %s", err, initRuntimesInstall)
	return nil
}

// nodeWithExpress finds node and an express it can require: the app's
// own (node_modules), a global one, or Debian's through NODE_PATH.
func nodeWithExpress(dir string) ([]string, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return nil, err
	}
	for _, env := range [][]string{nil, {"NODE_PATH=" + debianNodePath}} {
		cmd := exec.Command("node", "-e", "require('express')")
		cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
		if cmd.Run() == nil {
			return env, nil
		}
	}
	return nil, fmt.Errorf("node cannot require express (nor with NODE_PATH=%s)", debianNodePath)
}

// pythonServer finds the server program and a module its interpreter
// (its #! line's) must import.
func pythonServer(server, module string) func(string) ([]string, error) {
	return func(dir string) ([]string, error) {
		path, err := exec.LookPath(server)
		if err != nil {
			return nil, err
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		line, _ := bufio.NewReader(f).ReadString('\n')
		interp := strings.Fields(strings.TrimPrefix(line, "#!"))
		if !strings.HasPrefix(line, "#!") || len(interp) == 0 {
			return nil, fmt.Errorf("%s has no #! line naming its python", path)
		}
		cmd := exec.Command(interp[0], append(interp[1:], "-c", "import "+module)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("%s's python cannot import %s: %v\n%s", path, module, err, out)
		}
		return nil, nil
	}
}

func goToolchain(string) ([]string, error) {
	_, err := exec.LookPath("go")
	return nil, err
}

// gatehouse init in each sample app's directory writes a config that
// gatehouse validate accepts and gatehouse run serves the app with, on
// the app's real runtime.
func TestInitWritesAConfigThatRunServes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		app      string
		runtime  func(string) ([]string, error)
		detected string // what init says it found
		command  string // the command it writes
		before   string // a step of its Next that must run first
		body     string // the app's answer to GET /
	}{
		{"express", nodeWithExpress, "a Node.js app (Express)", "node server.js", "", "hello from express\n"},
		{"fastapi", pythonServer("uvicorn", "fastapi"), "a Python app (FastAPI)",
			"uvicorn main:app --host 127.0.0.1 --port $PORT", "", "hello from fastapi\n"},
		{"flask-gunicorn", pythonServer("gunicorn", "flask"), "a Python app (Flask)",
			"gunicorn -b 127.0.0.1:$PORT app:app", "", "hello from flask\n"},
		{"go", goToolchain, "a Go app", "./hello", "go build -o hello .", "hello from go\n"},
	} {
		t.Run(tc.app, func(t *testing.T) {
			t.Parallel()
			testutil.SkipInShort(t)
			dir := t.TempDir()
			t.Cleanup(func() { killUnder(dir) }) // an instance a failed test left behind
			if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "init", tc.app))); err != nil {
				t.Fatal(err)
			}
			env := needRuntime(t, dir, tc.runtime)
			bin := testutil.BuildBinary(t, gatehousePkg)
			start := time.Now()

			stdout, stderr, code := gatehouse(t, dir, "init")
			if code != 0 || !strings.Contains(stdout, "Detected "+tc.detected) {
				t.Fatalf("gatehouse init: exit %d, want 0 and %q\nstdout:\n%s\nstderr:\n%s", code, "Detected "+tc.detected, stdout, stderr)
			}
			cfg, err := config.Load(filepath.Join(dir, "gatehouse.yaml"))
			if err != nil {
				t.Fatalf("the written config: %v", err)
			}
			if diff := cmp.Diff(config.ShellCommand(tc.command), cfg.Apps["web"].Command); diff != "" {
				t.Errorf("apps.web.command (-want +got):\n%s", diff)
			}
			if tc.before != "" {
				if !strings.Contains(stdout, "\n  "+tc.before+"\n") {
					t.Fatalf("gatehouse init does not say to run %q first:\n%s", tc.before, stdout)
				}
				words := strings.Fields(tc.before)
				cmd := exec.Command(words[0], words[1:]...)
				cmd.Dir = dir
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", tc.before, err, out)
				}
			}
			if stdout, stderr, code := gatehouse(t, dir, "validate"); code != 0 || stderr != "" {
				t.Fatalf("gatehouse validate: exit %d, want 0 and no warning\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}

			listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
			admin := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
			g := startGatehouseAt(t, bin, dir, env, "run", "--listen", listen, "--admin", admin)
			c := httpClient(t, 10*time.Second)
			var got string
			testutil.WaitFor(t, 60*time.Second, "GET / through gatehouse answered by the "+tc.app+" app", func() bool {
				select {
				case <-g.done:
					t.Fatalf("gatehouse exited early (%v)\nstderr:\n%s", g.cmd.ProcessState, g.stderr)
				default:
				}
				resp, err := c.Get("http://" + listen + "/")
				if err != nil {
					return false
				}
				got = readBody(t, resp)
				return resp.StatusCode == 200
			})
			if got != tc.body {
				t.Errorf("GET / = %q, want %q", got, tc.body)
			}
			t.Logf("%s: init, validate, run and a first answer in %v", tc.app, time.Since(start).Round(time.Millisecond))
			stop := time.Now()
			g.signal(t, syscall.SIGTERM)
			if code := g.wait(t, 45*time.Second); code != 0 {
				t.Errorf("gatehouse exit %d after SIGTERM, want 0\nstderr:\n%s", code, g.stderr)
			}
			t.Logf("%s: gatehouse and the app stopped in %v", tc.app, time.Since(stop).Round(time.Millisecond))
		})
	}
}

// An existing gatehouse.yaml is left as it is unless --force.
func TestInitRefusesToOverwriteWithoutForce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeAppFile(t, filepath.Join(dir, "Procfile"), "web: python3 -m http.server $PORT\n")
	mine := "# mine\n"
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	writeAppFile(t, cfgFile, mine)

	stdout, stderr, code := gatehouse(t, dir, "init")
	if code != 1 || !strings.Contains(stderr, "gatehouse.yaml exists") {
		t.Errorf("gatehouse init over a config: exit %d, want 1 and %q\nstdout:\n%s\nstderr:\n%s", code, "gatehouse.yaml exists", stdout, stderr)
	}
	if got := string(mustRead(t, cfgFile)); got != mine {
		t.Errorf("gatehouse.yaml = %q after a refused init, want it untouched", got)
	}

	stdout, stderr, code = gatehouse(t, dir, "init", "--force")
	if code != 0 || !strings.Contains(stdout, "Detected a Procfile app") {
		t.Fatalf("gatehouse init --force: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(config.ShellCommand("python3 -m http.server $PORT"), cfg.Apps["web"].Command); diff != "" {
		t.Errorf("apps.web.command after --force (-want +got):\n%s", diff)
	}
}

// --force replaces the config's content, not who may read it: a
// gatehouse.yaml kept private stays private.
func TestInitForceKeepsTheConfigsPermissions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeAppFile(t, filepath.Join(dir, "Procfile"), "web: python3 -m http.server $PORT\n")
	cfgFile := filepath.Join(dir, "gatehouse.yaml")
	writeAppFile(t, cfgFile, "# mine, with a token\n")
	if err := os.Chmod(cfgFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code := gatehouse(t, dir, "init", "--force"); code != 0 {
		t.Fatalf("gatehouse init --force: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	fi, err := os.Stat(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("gatehouse.yaml's mode after --force = %v, want -rw------- as before", got)
	}
}

// An app init cannot place gets a template whose command is to be filled
// in, exit code 1 and a message that says so; validate refuses the
// template at its command.
func TestInitWithoutADetectedAppWritesATemplateAndFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeAppFile(t, filepath.Join(dir, "index.html"), "<p>static</p>\n")

	stdout, stderr, code := gatehouse(t, dir, "init")
	if code != 1 || !strings.Contains(stdout, "Could not tell how to start the app") ||
		!strings.Contains(stderr, "no app detected") {
		t.Errorf("gatehouse init: exit %d, want 1 and both messages\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(string(mustRead(t, filepath.Join(dir, "gatehouse.yaml"))), "TODO") {
		t.Errorf("the template has no TODO")
	}
	_, stderr, code = gatehouse(t, dir, "validate")
	if code != 2 || !strings.Contains(stderr, "apps.web.command: must not be empty") {
		t.Errorf("gatehouse validate of the template: exit %d, want 2 at apps.web.command\nstderr:\n%s", code, stderr)
	}
}

// --dir writes the config there, and the next commands init prints name
// it, so that they work from where init ran.
func TestInitDirWritesThereAndNamesTheConfig(t *testing.T) {
	t.Parallel()
	cwd := t.TempDir()
	app := filepath.Join(cwd, "app")
	writeAppFile(t, filepath.Join(app, "Procfile"), "web: python3 -m http.server $PORT\n")

	stdout, stderr, code := gatehouse(t, cwd, "init", "--dir", "app")
	want := "gatehouse validate -c " + filepath.Join("app", "gatehouse.yaml")
	if code != 0 || !strings.Contains(stdout, want) {
		t.Fatalf("gatehouse init --dir app: exit %d, want 0 and %q\nstdout:\n%s\nstderr:\n%s", code, want, stdout, stderr)
	}
	if stdout, stderr, code := gatehouse(t, cwd, strings.Fields(want)[1:]...); code != 0 {
		t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", want, code, stdout, stderr)
	}
}

func writeAppFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
