package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestFromCommand(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	argv := []string{"node", "server.js"}
	got := FromCommand(argv)
	argv[0] = "changed" // the config must not alias the caller's slice

	web := NewApp("web")
	web.Command = Command{"node", "server.js"}
	web.Routes = PlainRoutes("/")
	web.Dir = dir
	want := Default()
	want.DataDir = filepath.Join(dir, DefaultDataDir)
	want.Apps = map[string]*App{"web": web}
	want.Order = []string{"web"}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("FromCommand mismatch (-want +got):\n%s", diff)
	}
	if err := got.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

func TestFromProcfile(t *testing.T) {
	tests := []struct {
		name     string
		procfile string
		want     Command
		wantErr  string
	}{
		{"web line", "# processes\nworker: node worker.js\nweb: node server.js --port $PORT\n",
			Command{"sh", "-c", "node server.js --port $PORT"}, ""},
		{"spaces around", "  web  :   bundle exec puma  \n", Command{"sh", "-c", "bundle exec puma"}, ""},
		{"no web line", "worker: node worker.js\nwebby: x\n", nil, `Procfile: no "web:" line, which gatehouse runs`},
		{"empty web line", "web:\n", nil, `Procfile:1: web: has no command`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			writeFile(t, dir, "Procfile", tt.procfile)
			c, err := FromProcfile("Procfile")
			if failedAs(t, "FromProcfile", err, tt.wantErr) {
				return
			}
			if diff := cmp.Diff(tt.want, c.Apps["web"].Command); diff != "" {
				t.Errorf("command mismatch (-want +got):\n%s", diff)
			}
			if c.Apps["web"].Dir != dir || c.File != "" {
				t.Errorf("Dir = %q, File = %q; want %q and \"\"", c.Apps["web"].Dir, c.File, dir)
			}
		})
	}
}

func TestFromProcfileMissing(t *testing.T) {
	_, err := FromProcfile(filepath.Join(t.TempDir(), "Procfile"))
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "read procfile: ") {
		t.Errorf("error = %v, want wrapped not-exist with context", err)
	}
}

// TestFind checks the documented lookup order: -c FILE, ./gatehouse.yaml,
// the command after --, ./Procfile.
func TestFind(t *testing.T) {
	const (
		yamlFile = "apps:\n  web:\n    command: from-yaml\n"
		other    = "apps:\n  web:\n    command: from-explicit\n"
		procfile = "web: from-procfile\n"
	)
	tests := []struct {
		name     string
		files    map[string]string
		explicit string
		argv     []string
		want     string // the app's command, as run by sh -c or directly
		wantErr  string
	}{
		{"explicit wins", map[string]string{"gatehouse.yaml": yamlFile, "other.yaml": other, "Procfile": procfile},
			"other.yaml", []string{"from-argv"}, "from-explicit", ""},
		{"explicit missing is an error", map[string]string{"gatehouse.yaml": yamlFile},
			"nope.yaml", nil, "", "read config: open nope.yaml: no such file or directory"},
		{"gatehouse.yaml before argv", map[string]string{"gatehouse.yaml": yamlFile, "Procfile": procfile},
			"", []string{"from-argv"}, "from-yaml", ""},
		{"argv before Procfile", map[string]string{"Procfile": procfile},
			"", []string{"from-argv"}, "from-argv", ""},
		{"Procfile last", map[string]string{"Procfile": procfile},
			"", nil, "from-procfile", ""},
		{"nothing", nil, "", nil, "",
			"no config: looked for -c FILE, ./gatehouse.yaml, a command after -- (gatehouse run -- node server.js) and ./Procfile with a web: line"},
		{"invalid gatehouse.yaml is reported, not skipped", map[string]string{"gatehouse.yaml": "apps: {web: {}}\n", "Procfile": procfile},
			"", nil, "", "gatehouse.yaml:1: apps.web: missing command (or upstreams)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Chdir(dir)
			for name, content := range tt.files {
				writeFile(t, dir, name, content)
			}
			c, err := Find(tt.explicit, tt.argv)
			if failedAs(t, "Find", err, tt.wantErr) {
				return
			}
			cmd := c.Apps["web"].Command
			if got := cmd[len(cmd)-1]; got != tt.want {
				t.Errorf("found command %q, want %q", cmd, tt.want)
			}
			if c.Apps["web"].Dir != dir {
				t.Errorf("Dir = %q, want %q (resolved)", c.Apps["web"].Dir, dir)
			}
		})
	}
}

func TestFindNothingIsErrNoConfig(t *testing.T) {
	t.Chdir(t.TempDir())
	if _, err := Find("", nil); !errors.Is(err, ErrNoConfig) {
		t.Errorf("Find = %v, want ErrNoConfig", err)
	}
}

func TestAdminAddr(t *testing.T) {
	tests := []struct {
		admin, want string
	}{
		{"", "127.0.0.1:9901"},
		{"127.0.0.1:9901", "127.0.0.1:9901"},
		{":9902", "127.0.0.1:9902"},
		{"0.0.0.0:9903", "127.0.0.1:9903"},
		{"[::]:9904", "[::1]:9904"},
		{"10.0.0.1:9905", "10.0.0.1:9905"},
		{"admin.internal:9906", "admin.internal:9906"},
	}
	for _, tt := range tests {
		t.Run(tt.admin, func(t *testing.T) {
			if got := (&Config{Admin: tt.admin}).AdminAddr(); got != tt.want {
				t.Errorf("AdminAddr() = %q, want %q", got, tt.want)
			}
		})
	}
	if got := (*Config)(nil).AdminAddr(); got != DefaultAdmin {
		t.Errorf("nil AdminAddr() = %q, want %q", got, DefaultAdmin)
	}
}

func TestResolve(t *testing.T) {
	abs := filepath.Join(t.TempDir(), "abs")
	c := Default()
	c.Apps = map[string]*App{"a": NewApp("a"), "b": NewApp("b")}
	c.Apps["b"].Dir = abs
	c.Resolve("/srv/site")
	got := []string{c.DataDir, c.Apps["a"].Dir, c.Apps["b"].Dir}
	want := []string{"/srv/site/.gatehouse", "/srv/site", abs}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Resolve mismatch (-want +got):\n%s", diff)
	}
}

// The tls: files are read long after startup (on change, on SIGHUP), so
// they are resolved against the config's directory like data_dir.
func TestResolveTLSFiles(t *testing.T) {
	c := Default()
	c.TLS = NewTLS()
	c.TLS.CertFile, c.TLS.KeyFile = "certs/site.pem", "/etc/ssl/site.key"
	c.TLS.ACME = NewACME()
	c.TLS.ACME.CARoots = "roots.pem"
	c.Resolve("/srv/site")
	got := []string{c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ACME.CARoots}
	want := []string{"/srv/site/certs/site.pem", "/etc/ssl/site.key", "/srv/site/roots.pem"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Resolve mismatch (-want +got):\n%s", diff)
	}
}

// failedAs checks err against want, the error's text a case expects (""
// for none), and reports whether the case ends there, having failed as
// it should.
func failedAs(t *testing.T, what string, err error, want string) bool {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatal(err)
		}
		return false
	}
	if err == nil || err.Error() != want {
		t.Fatalf("%s error = %v, want %q", what, err, want)
	}
	return true
}
