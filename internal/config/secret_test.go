package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// secretTagProblems walks every struct field reachable from t (through
// pointers, slices, arrays, maps and nested structs) and lists each that
// does not say whether it is a secret, or that Redacted could not handle.
func secretTagProblems(t reflect.Type) []string {
	var problems []string
	pkg := reflect.TypeFor[Config]().PkgPath()
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		switch t.Kind() {
		case reflect.Pointer:
			walk(t.Elem(), path)
		case reflect.Slice, reflect.Array:
			walk(t.Elem(), path+"[]")
		case reflect.Map:
			if t.Key().Kind() != reflect.String {
				problems = append(problems, fmt.Sprintf("%s: map keys must be strings (names, shown as is), not %s", path, t.Key()))
			}
			walk(t.Elem(), path+"[]")
		case reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
			problems = append(problems, fmt.Sprintf("%s: a %s cannot be copied by Redacted", path, t.Kind()))
		case reflect.Struct:
			if seen[t] {
				return
			}
			seen[t] = true
			if t.PkgPath() != pkg {
				problems = append(problems, fmt.Sprintf("%s: struct %s is from another package, whose fields cannot say whether they are secret", path, t))
				return
			}
			for i := range t.NumField() {
				f := t.Field(i)
				p := path + "." + f.Name
				tag, tagged := f.Tag.Lookup(SecretTag)
				s, ok := FieldSecrecy(f)
				switch {
				case !tagged:
					problems = append(problems, fmt.Sprintf("%s (%s.%s): no secret tag; add secret:\"true\", \"false\" or \"env\"", p, t.Name(), f.Name))
					continue
				case !ok:
					problems = append(problems, fmt.Sprintf("%s (%s.%s): secret:%q; want \"true\", \"false\" or \"env\"", p, t.Name(), f.Name, tag))
					continue
				case s == SecretByKey && (f.Type.Kind() != reflect.Map || f.Type.Key().Kind() != reflect.String || f.Type.Elem().Kind() != reflect.String):
					problems = append(problems, fmt.Sprintf("%s (%s.%s): secret:\"env\" is for a map of strings, not %s", p, t.Name(), f.Name, f.Type))
				}
				if f.IsExported() { // unexported state is not copied by Redacted
					walk(f.Type, p)
				}
			}
		}
	}
	walk(t, t.Name())
	return problems
}

// Every field of the config says whether it is a secret: nobody can add
// one without deciding.
func TestEveryConfigFieldHasSecretTag(t *testing.T) {
	for _, p := range secretTagProblems(reflect.TypeFor[Config]()) {
		t.Error(p)
	}
}

// The walk itself finds what it must.
func TestSecretTagProblems(t *testing.T) {
	type inner struct {
		Token string
	}
	type bad struct {
		A string            `secret:"yes"`
		B []*inner          `secret:"false"`
		C int               `secret:"env"`
		D map[int]string    `secret:"false"`
		E chan int          `secret:"false"`
		F reflect.Value     `secret:"false"`
		G map[string]string `secret:"env"`
		//lint:ignore U1000 read through reflection: an unexported field without a tag is a problem too
		h string
	}
	want := []string{
		`bad.A (bad.A): secret:"yes"; want "true", "false" or "env"`,
		`bad.B[].Token (inner.Token): no secret tag; add secret:"true", "false" or "env"`,
		`bad.C (bad.C): secret:"env" is for a map of strings, not int`,
		`bad.D: map keys must be strings (names, shown as is), not int`,
		`bad.E: a chan cannot be copied by Redacted`,
		`bad.F: struct reflect.Value is from another package, whose fields cannot say whether they are secret`,
		`bad.h (bad.h): no secret tag; add secret:"true", "false" or "env"`,
	}
	if diff := cmp.Diff(want, secretTagProblems(reflect.TypeFor[bad]())); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// Markers of fillConfig.
const (
	secretMark = "SECRET-"
	plainMark  = "plain-"
)

// fillConfig returns a Config with every field reachable from it set: a
// pointer to a value, a list and a map with entries, each string a marker
// of its path, SECRET-… under a secret field and plain-… elsewhere. An
// env-like map (secret:"env") gets DB_PASSWORD (secret by its name) and
// GREETING (not). With redacted, it is instead what Redacted must make of
// that config: each secret string REDACTED, a secret number zero.
func fillConfig(redacted bool) *Config {
	var fill func(v reflect.Value, path string, s Secrecy)
	fill = func(v reflect.Value, path string, s Secrecy) {
		t := v.Type()
		switch t.Kind() {
		case reflect.Pointer:
			v.Set(reflect.New(t.Elem()))
			fill(v.Elem(), path, s)
		case reflect.Struct:
			for i := range t.NumField() {
				if f := t.Field(i); f.IsExported() {
					fs, _ := FieldSecrecy(f)
					fill(v.Field(i), path+"."+f.Name, max(s, fs))
				}
			}
		case reflect.Slice:
			v.Set(reflect.MakeSlice(t, 2, 2))
			for i := range 2 {
				fill(v.Index(i), fmt.Sprintf("%s[%d]", path, i), s)
			}
		case reflect.Map:
			v.Set(reflect.MakeMap(t))
			keys := []string{"k1", "k2"}
			if s == SecretByKey {
				keys = []string{"DB_PASSWORD", "GREETING"}
			}
			for _, k := range keys {
				e := reflect.New(t.Elem()).Elem()
				p := path + "[" + k + "]"
				es := s
				if s == SecretByKey {
					es = NotSecret
					if k == "DB_PASSWORD" {
						es = Secret
					}
				}
				fill(e, p, es)
				v.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), e)
			}
		case reflect.String:
			switch {
			case s == NotSecret:
				v.SetString(plainMark + path)
			case redacted:
				v.SetString(RedactedText)
			default:
				v.SetString(secretMark + path)
			}
		case reflect.Bool:
			v.SetBool(s == NotSecret || !redacted)
		case reflect.Int, reflect.Int64:
			if s == NotSecret || !redacted {
				v.SetInt(7)
			}
		case reflect.Float64:
			if s == NotSecret || !redacted {
				v.SetFloat(0.5)
			}
		default:
			panic(fmt.Sprintf("fillConfig: %s at %s", t, path))
		}
	}
	c := &Config{}
	fill(reflect.ValueOf(c).Elem(), "Config", NotSecret)
	return c
}

// Whatever field is secret, the dump of a config with all of them set
// carries none of their values, and every other value is kept.
func TestRedactedHidesEverySecret(t *testing.T) {
	c := fillConfig(false)
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	markers := regexp.MustCompile(`(` + secretMark + `|` + plainMark + `)[A-Za-z0-9_.\[\]]+`)
	var secrets, plains []string
	for _, m := range markers.FindAllString(string(b), -1) {
		if strings.HasPrefix(m, secretMark) {
			secrets = append(secrets, m)
		} else {
			plains = append(plains, m)
		}
	}
	// The secrets known today are among those the tags make (a new one
	// only adds to the list).
	for _, want := range []string{
		"SECRET-Config.AdminToken",
		"SECRET-Config.Apps[k1].Env[DB_PASSWORD]",
		"SECRET-Config.Alerts.Receivers[0].URL",
		"SECRET-Config.Alerts.Receivers[1].Headers[k2]",
	} {
		if !slices.Contains(secrets, want) {
			t.Errorf("the filled config has no %s; its secrets are %v", want, secrets)
		}
	}

	r := c.Redacted()
	rb, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(rb), s) {
			t.Errorf("Redacted() JSON has %s", s)
		}
	}
	if strings.Contains(string(rb), secretMark) {
		t.Errorf("Redacted() JSON has a secret marker:\n%s", rb)
	}
	for _, p := range plains {
		if !strings.Contains(string(rb), `"`+p+`"`) {
			t.Errorf("Redacted() JSON lost the non-secret value %s", p)
		}
	}
	// Exactly the secrets changed: structure, keys, numbers kept.
	if diff := cmp.Diff(fillConfig(true), r, cmpopts.IgnoreUnexported(Config{}, UpstreamTLS{})); diff != "" {
		t.Errorf("Redacted() (-want +got):\n%s", diff)
	}
	// And the original is untouched.
	if diff := cmp.Diff(fillConfig(false), c, cmpopts.IgnoreUnexported(Config{}, UpstreamTLS{})); diff != "" {
		t.Errorf("Redacted() changed its receiver (-want +got):\n%s", diff)
	}
}

func TestRedacted(t *testing.T) {
	const base = "admin: 0.0.0.0:9901\napps:\n  web:\n    command: node server.js\n"
	tests := []struct {
		name string
		yaml string
		// want changes a config parsed from yaml into what Redacted must
		// return; nil: the same config.
		want func(c *Config)
	}{
		{"nothing secret", "apps:\n  web:\n    command: [node, server.js, --port, \"3000\"]\n    env: {NODE_ENV: production}\n", nil},
		{"admin token", base + "admin_token: s3cr3t-admin\n", func(c *Config) { c.AdminToken = RedactedText }},
		{"empty admin token stays empty", base + "admin_token: \"\"\n", nil},
		{"env by name",
			base + "    env:\n      DB_PASSWORD: hunter2\n      DATABASE_URL: postgres://app:hunter2@db/app\n      SLACK_WEBHOOK_URL: https://hooks.slack.com/services/T0/B0/xyz\n      GREETING: hello\n      API_TOKEN: \"\"\n",
			func(c *Config) {
				c.Apps["web"].Env = map[string]string{"DB_PASSWORD": RedactedText, "DATABASE_URL": "postgres://app:REDACTED@db/app",
					"SLACK_WEBHOOK_URL": RedactedText, "GREETING": "hello", "API_TOKEN": ""}
			}},
		{"alert receivers",
			base + "alerts:\n  receivers:\n    - name: slack\n      url: https://hooks.slack.com/services/T0/B0/xyz\n      format: slack\n    - name: pager\n      url: https://events.example.com/v2\n      headers:\n        Authorization: Bearer s3cr3t\n        X-Api-Key: k3y\n",
			func(c *Config) {
				c.Alerts.Receivers[0].URL = RedactedText
				c.Alerts.Receivers[1].URL = RedactedText
				c.Alerts.Receivers[1].Headers = map[string]string{"Authorization": RedactedText, "X-Api-Key": RedactedText}
			}},
		{"a password in any URL",
			base + "    routes: [/]\n  job:\n    command: [worker, --db, \"postgres://u:hunter2@db/x\"]\n    routes: [/job]\n",
			func(c *Config) { c.Apps["job"].Command = Command{"worker", "--db", "postgres://u:REDACTED@db/x"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := func() *Config {
				c, err := Parse("g.yaml", []byte(tt.yaml))
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			c, want := parse(), parse()
			if tt.want != nil {
				tt.want(want)
			}
			opts := cmpopts.IgnoreUnexported(Config{}, UpstreamTLS{})
			if diff := cmp.Diff(want, c.Redacted(), opts); diff != "" {
				t.Errorf("Redacted() (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(parse(), c, opts); diff != "" {
				t.Errorf("Redacted() changed its receiver (-want +got):\n%s", diff)
			}
		})
	}
	if got := (*Config)(nil).Redacted(); got != nil {
		t.Errorf("nil.Redacted() = %v; want nil", got)
	}
}

func TestRedactValue(t *testing.T) {
	for _, tc := range []struct{ key, value, want string }{
		{"DB_PASSWORD", "hunter2", "REDACTED"},
		{"API_KEY", "ak-123", "REDACTED"},
		{"GITHUB_TOKEN", "ghp_abc", "REDACTED"},
		{"SECRET_X", "x", "REDACTED"},
		{"SENTRY_DSN", "https://k@o1.ingest.sentry.io/1", "REDACTED"},
		{"db_password", "hunter2", "REDACTED"},
		{"API_TOKEN", "", ""},
		{"DATABASE_URL", "postgres://u:p@h/db", "postgres://u:REDACTED@h/db"},
		{"REDIS_URL", "redis://:hunter2@cache:6379/0", "redis://:REDACTED@cache:6379/0"},
		{"PUBLIC_URL", "https://example.com/app", "https://example.com/app"},
		{"SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/xyz", "REDACTED"},
		{"AUTH_URL", "https://login.example.com/x", "REDACTED"},
		{"CACHE", "redis://:hunter2@cache:6379/0", "redis://:REDACTED@cache:6379/0"},
		{"NODE_ENV", "production", "production"},
		{"PATH", "/usr/local/bin:/usr/bin:/bin", "/usr/local/bin:/usr/bin:/bin"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			if got := RedactValue(tc.key, tc.value); got != tc.want {
				t.Errorf("RedactValue(%q, %q) = %q; want %q", tc.key, tc.value, got, tc.want)
			}
		})
	}
}

// A secret written in the wrong place, or wrongly, is not echoed by the
// error that says so: config errors reach logs and the reload API.
func TestConfigErrorsHideSecrets(t *testing.T) {
	const secret = "s3cr3t-value"
	head := "apps:\n  web:\n    command: node server.js\n"
	receiver := head + "alerts:\n  receivers:\n    - name: ops\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"headers not a mapping", receiver + "      url: https://h.example/x\n      headers: \"Bearer " + secret + "\"\n",
			[]string{`g.yaml:8: alerts.receivers[0].headers: must be a mapping, got a single value (not shown: it is a secret)`}},
		{"url without scheme", receiver + "      url: hooks.slack.com/services/T0/B0/" + secret + "\n",
			[]string{`g.yaml:7: alerts.receivers[0].url: must be an absolute http or https URL (it has no scheme)`}},
		{"url without host", receiver + "      url: \"https:///" + secret + "\"\n",
			[]string{`g.yaml:7: alerts.receivers[0].url: must be an absolute http or https URL (it has no host)`}},
		{"url with a token for a scheme", receiver + "      url: \"" + secret + ":x\"\n",
			[]string{`g.yaml:7: alerts.receivers[0].url: must be an absolute http or https URL (its scheme is neither http nor https)`}},
		{"env not a mapping", head + "    env: \"DB_PASSWORD=" + secret + "\"\n",
			[]string{`g.yaml:4: apps.web.env: must be a mapping, got a single value (not shown: it is a secret)`}},
		{"a password in an upstream URL", "apps:\n  ext:\n    upstreams: [\"https://u:" + secret + "@h.example/x\"]\n",
			[]string{`g.yaml:3: apps.ext.upstreams[0]: "https://u:REDACTED@h.example/x" must be scheme://host[:port], without path, query or user`}},
		{"a non-secret value is still quoted", head + "    routes: \"/x\"\n",
			[]string{`g.yaml:4: apps.web.routes: must be a list, got "/x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("g.yaml", []byte(tt.yaml))
			if diff := cmp.Diff(tt.want, errLines(err)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("error carries the secret: %v", err)
			}
		})
	}
}
