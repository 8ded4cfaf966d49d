package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

func parseFile(t *testing.T, path string) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(path, data)
}

func TestParseFull(t *testing.T) {
	const file = "testdata/good/full.yaml"
	got, err := parseFile(t, file)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}

	web := NewApp("web")
	web.Command = Command{"node", "server.js"}
	web.Env = map[string]string{"NODE_ENV": "production", "WORKERS": "4"}
	web.Instances = 2
	web.Routes = PlainRoutes("/")
	web.Health.Path = "/healthz"
	web.QueueSize = 500
	web.MaxAttempts = 2
	web.RetryBodyLimit = 64 << 10
	web.UpstreamIdleTimeout = Duration(3 * time.Second)
	web.MemoryLimit = 1 << 30
	web.Limits = AppLimits{RequestBody: 100 << 20, ResponseHead: 256 << 10, BodyTimeout: Duration(5 * time.Minute), TunnelIdleTimeout: Duration(time.Hour),
		ResponseBuffer: 0, RequestBuffer: 4 << 20}
	web.Upgrades = []string{"WebSocket", "connect-udp"}
	web.AutoHeal = &AutoHeal{
		MinProcessExecutionTime: Duration(time.Minute),
		MaxRecycles:             &RateLimit{Count: 5, Per: Duration(time.Hour)},
		Triggers: Triggers{
			Memory:       &MemoryTrigger{PrivateBytes: 512 << 20},
			Requests:     &RequestsTrigger{Count: 100000, Interval: Duration(time.Hour)},
			SlowRequests: []SlowTrigger{{TimeTaken: Duration(10 * time.Second), Count: 5, Interval: Duration(time.Minute), Path: "/api/"}},
			StatusCodes:  []StatusTrigger{{Status: StatusRange{500, 599}, Count: 20, Interval: Duration(time.Minute)}},
		},
		Action: ActionCustom,
		Custom: Command{"sh", "-c", "kill -USR2 {pid}"},
	}

	api := NewApp("api")
	api.Upstreams = []string{"10.0.0.5:8080", "10.0.0.6:8080"}
	api.Routes = PlainRoutes("api.example.com/", "/api/")
	api.Health.Path = "/status"
	api.Health.Status = StatusRange{200, 200}
	// api sets no limits: it inherits every top-level one.
	api.Limits = AppLimits{RequestBody: 10 << 20, ResponseHead: 128 << 10, BodyTimeout: Duration(45 * time.Second), TunnelIdleTimeout: Duration(5 * time.Minute),
		ResponseBuffer: 128 << 10, RequestBuffer: 4 << 20}
	api.Upgrades = []string{} // upgrades: [] forwards none

	want := &Config{
		Listen:         ":8080",
		Admin:          "127.0.0.1:9901",
		AdminToken:     "s3cret",
		DataDir:        ".gatehouse",
		SampleInterval: Duration(2 * time.Second),
		Limits: Limits{
			RequestHead:       32 << 10,
			ResponseHead:      128 << 10,
			RequestBody:       10 << 20,
			MaxConnections:    4096,
			HeadTimeout:       Duration(20 * time.Second),
			BodyTimeout:       Duration(45 * time.Second),
			KeepaliveTimeout:  Duration(90 * time.Second),
			SendTimeout:       Duration(60 * time.Second),
			TunnelIdleTimeout: Duration(5 * time.Minute),
			ResponseBuffer:    128 << 10,
			RequestBuffer:     4 << 20,
			BufferMemory:      32 << 20,
			BufferDisk:        2 << 30,
			ConnectionBuffer:  512 << 10,
		},
		Apps:  map[string]*App{"web": web, "api": api},
		Dumps: Dumps{MaxSize: 1 << 30, MaxCount: 5, MaxAge: Duration(48 * time.Hour), DrainTimeout: Duration(3 * time.Second)},
		File:  file,
		Order: []string{"web", "api"},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("Parse(%s) mismatch (-want +got):\n%s", file, diff)
	}
}

func TestParseMinimalGetsDefaults(t *testing.T) {
	got, err := parseFile(t, "testdata/good/minimal.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	web := NewApp("web")
	web.Command = Command{"sh", "-c", "node server.js"}
	web.Routes = PlainRoutes("/") // a lone app serves everything
	want := Default()
	want.Apps = map[string]*App{"web": web}
	want.File = "testdata/good/minimal.yaml"
	want.Order = []string{"web"}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreUnexported(Config{})); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

// TestBadGoldens checks every bad fixture's full error text, so that a
// change in wording, line or path shows up in the goldens' diff.
func TestBadGoldens(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c, err := Load(file)
			if err == nil {
				t.Fatalf("Load(%s) = %+v, want errors", file, c)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load error %T is not Errors: %v", err, err)
			}
			testutil.Golden(t, strings.TrimSuffix(file, ".yaml")+".golden", err.Error()+"\n")
		})
	}
}

func TestThreeProblems(t *testing.T) {
	_, err := Load("testdata/bad/three_problems.yaml")
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("want Errors, got %v", err)
	}
	type loc struct {
		Line int
		Path string
	}
	var got []loc
	for _, e := range errs {
		got = append(got, loc{e.Line, e.Path})
	}
	want := []loc{{6, "apps.web.helth"}, {8, "apps.web.start_timeout"}, {9, "apps.worker"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems mismatch (-want +got):\n%s", diff)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "apps.web.helth" {
		t.Errorf("errors.As(*FieldError) = %v, want the first problem", fe)
	}
}

func TestLoadReadError(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "read config: ") {
		t.Errorf("Load(missing) = %v, want wrapped fs.ErrNotExist with context", err)
	}
}

func TestLoadResolvesDirs(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "conf/g.yaml", "data_dir: state\napps:\n  web:\n    command: x\n    dir: ../app\n")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := [2]string{filepath.Join(dir, "conf/state"), filepath.Join(dir, "app")}
	if got := [2]string{c.DataDir, c.Apps["web"].Dir}; got != want {
		t.Errorf("dirs = %q, want %q", got, want)
	}
	if c.File != path {
		t.Errorf("File = %q, want %q", c.File, path)
	}
}

// TestParseErrors covers decoding problems: shapes, syntax, keys.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "empty file",
			yaml: "",
			want: []string{`g.yaml:1: apps: at least one app is required, e.g. apps: {web: {command: "node server.js"}}`},
		},
		{
			name: "root not a mapping",
			yaml: "- web\n",
			want: []string{`g.yaml:1: config must be a mapping of keys (listen, admin, apps, ...), got a list`},
		},
		{
			name: "syntax error has a line",
			yaml: "apps:\n  web:\n    command: [a\n",
			want: []string{`g.yaml:3: invalid YAML: did not find expected ',' or ']'`},
		},
		{
			name: "syntax error on a later line",
			yaml: "a: 1\n- b\n",
			want: []string{`g.yaml:2: invalid YAML: did not find expected key`},
		},
		{
			name: "two documents",
			yaml: "apps: {web: {command: x}}\n---\nlisten: \":1\"\n",
			want: []string{`g.yaml:2: more than one YAML document; put everything in one`},
		},
		{
			name: "unknown top-level key suggests",
			yaml: "app: {}\n",
			want: []string{
				`g.yaml:1: app: unknown key (did you mean "apps"?)`,
				`g.yaml:1: apps: at least one app is required, e.g. apps: {web: {command: "node server.js"}}`,
			},
		},
		{
			name: "unknown key far from any has no suggestion",
			yaml: "apps: {web: {command: x, frobnicate: 1}}\n",
			want: []string{`g.yaml:1: apps.web.frobnicate: unknown key`},
		},
		{
			name: "duplicate key",
			yaml: "apps:\n  web:\n    command: x\n    command: y\n",
			want: []string{`g.yaml:4: apps.web.command: duplicate key (first at line 3)`},
		},
		{
			name: "wrong shapes",
			yaml: "apps:\n  web:\n    command: x\n    env: [A]\n    routes: /\n    health: 5s\n    instances: \"2\"\n",
			want: []string{
				`g.yaml:4: apps.web.env: must be a mapping, got a list`,
				`g.yaml:5: apps.web.routes: must be a list, got "/"`,
				`g.yaml:6: apps.web.health: must be a mapping, got "5s"`,
				`g.yaml:7: apps.web.instances: must be an integer, got "2"`,
			},
		},
		{
			name: "command list items must be strings",
			yaml: "apps:\n  web:\n    command: [node, {x: 1}]\n",
			want: []string{`g.yaml:3: apps.web.command[1]: must be a string, got a mapping`},
		},
		{
			name: "auto_heal errors inside lists carry index paths",
			yaml: "apps:\n  web:\n    command: x\n    auto_heal:\n      triggers:\n        slow_requests:\n          - {time_taken: 10, count: 1, interval: 1m, bogus: 1}\n",
			want: []string{
				`g.yaml:7: apps.web.auto_heal.triggers.slow_requests[0].time_taken: "10" needs a unit, e.g. 30s`,
				`g.yaml:7: apps.web.auto_heal.triggers.slow_requests[0].bogus: unknown key`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("g.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse = %+v, want errors", c)
			}
			if diff := cmp.Diff(tt.want, errLines(err)); diff != "" {
				t.Errorf("errors mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseYAMLFeatures: anchors, aliases and merge keys work as in YAML,
// and null values keep defaults.
func TestParseYAMLFeatures(t *testing.T) {
	src := `
base: &base
  command: [node, server.js]
  health: {path: /healthz}
  instances: 2
apps:
  web:
    <<: *base
    instances: 3
    routes: ["/"]
  api:
    <<: *base
    health:
    routes: ["/api/"]
`
	// "base" is not a config key; the anchor must live somewhere the
	// schema allows, so this also checks that it is reported.
	_, err := Parse("g.yaml", []byte(src))
	if diff := cmp.Diff([]string{`g.yaml:2: base: unknown key`}, errLines(err)); diff != "" {
		t.Fatalf("errors mismatch (-want +got):\n%s", diff)
	}

	src = `apps:
  web: &base
    command: [node, server.js]
    health: {path: /healthz}
    instances: 2
    routes: ["/"]
  api:
    <<: *base
    health:
    routes: ["/api/"]
`
	c, err := Parse("g.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	api := NewApp("api")
	api.Command = Command{"node", "server.js"}
	api.Health.Path = "/healthz" // from the merge; "health:" with no value keeps it
	api.Instances = 2
	api.Routes = PlainRoutes("/api/")
	if diff := cmp.Diff(api, c.Apps["api"]); diff != "" {
		t.Errorf("merged app mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"web", "api"}, c.Order); diff != "" {
		t.Errorf("Order mismatch (-want +got):\n%s", diff)
	}
}

func TestExplicitZeroIsValidated(t *testing.T) {
	_, err := Parse("g.yaml", []byte("apps:\n  web:\n    command: x\n    instances: 0\n    queue_size: 0\n"))
	want := []string{
		`g.yaml:4: apps.web.instances: must be between 1 and 256, got 0`,
		`g.yaml:5: apps.web.queue_size: must be ≥ 1, got 0`,
	}
	if diff := cmp.Diff(want, errLines(err)); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
}

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  FieldError
		want string
	}{
		{"full", FieldError{"g.yaml", 12, "apps.web.health.interval", "must be > 0"}, "g.yaml:12: apps.web.health.interval: must be > 0"},
		{"no path", FieldError{"g.yaml", 3, "", "invalid YAML: x"}, "g.yaml:3: invalid YAML: x"},
		{"no line", FieldError{"g.yaml", 0, "apps", "x"}, "g.yaml: apps: x"},
		{"no file", FieldError{"", 0, "apps.web", "x"}, "apps.web: x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	errs := Errors{{"a", 1, "x", "m"}, {"a", 2, "y", "n"}}
	if got, want := errs.Error(), "a:1: x: m\na:2: y: n"; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
	if got := len(errs.Unwrap()); got != 2 {
		t.Errorf("Unwrap() has %d errors, want 2", got)
	}
}

// mergeBomb nests levels mappings, each merging the one inside it width
// times: a few hundred bytes whose merge keys expand to width^levels keys.
func mergeBomb(levels, width int) string {
	l := "&l0 {command: x}"
	for k := 1; k <= levels; k++ {
		l = fmt.Sprintf("&l%d {<<: [%s%s]}", k, l, strings.Repeat(fmt.Sprintf(", *l%d", k-1), width-1))
	}
	return "apps:\n  web:\n    <<: " + l + "\n"
}

// TestParseHostileAliases: aliases and merge keys are followed as they are
// decoded, so a mapping that merges itself, or merges nested width times
// over, must end with an error rather than overflow the stack (a crash no
// recover catches) or run for hours.
func TestParseHostileAliases(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{
			name: "mapping merges itself",
			yaml: "apps:\n  web: &a\n    <<: *a\n    command: x\n",
			want: []string{`g.yaml:3: apps.web: merge key (<<) refers to a mapping that contains it`},
		},
		{
			name: "mapping merges one that merges it",
			yaml: "apps:\n  web: &a\n    command: x\n    <<: &b\n      <<: *a\n",
			want: []string{`g.yaml:5: apps.web: merge key (<<) refers to a mapping that contains it`},
		},
		{
			name: "nested merge keys expand exponentially",
			yaml: mergeBomb(12, 10),
			want: []string{`g.yaml:3: apps.web: aliases or merge keys (<<) expand to too much; write the config out rather than through nested aliases`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := Parse("g.yaml", []byte(tt.yaml))
				done <- err
			}()
			select {
			case err := <-done:
				if diff := cmp.Diff(tt.want, errLines(err)); diff != "" {
					t.Errorf("errors mismatch (-want +got):\n%s", diff)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("Parse did not return within 20s")
			}
		})
	}
}

// A key written with no value keeps its default, as one not written
// does: an app's limit is then the top level's (see
// TestLoadAppLimitsInherit), compress's min_size its 1KiB, an autoscale
// rule's for its default, access_log data_dir's access.log.
func TestKeyWithNoValueKeepsItsDefault(t *testing.T) {
	src := "access_log:\napps:\n  web:\n    command: x\n    instances: 2\n" +
		"    compress: {min_size: }\n" +
		"    autoscale: {max: 4, out: [{metric: held, above: 1, for: null}]}\n"
	c, err := Parse("g.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	web := c.Apps["web"]
	got := []any{web.Compress.MinSize, web.Autoscale.Out[0].For, c.AccessLog}
	want := []any{Size(1 << 10), Duration(DefaultOutFor), ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
}
