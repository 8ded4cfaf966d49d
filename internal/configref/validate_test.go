package configref_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/schema"
)

// compileSchema compiles the schema the binary embeds.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(schema.JSON()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	const url = "file:///gatehouse.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validate checks YAML data against the schema, as an editor does: the
// YAML read as the JSON value it stands for.
func validate(s *jsonschema.Schema, data []byte) error {
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// shippedConfigs are the configs the repository ships or tests as good:
// the examples, the deploy configs and the good test configs.
func shippedConfigs(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"examples/*/gatehouse.yaml", "internal/config/testdata/good/*.yaml", "internal/cli/testdata/good.yaml"} {
		m, err := filepath.Glob(filepath.Join(repoRoot, pattern))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	err := filepath.WalkDir(filepath.Join(repoRoot, "deploy"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "gatehouse.yaml" {
			files = append(files, path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("found %d shipped configs (%v), want the 8 or more there are", len(files), files)
	}
	return files
}

// Every config the repository ships is valid for the schema, as it is
// for gatehouse itself.
func TestShippedConfigsMatchTheSchema(t *testing.T) {
	s := compileSchema(t)
	for _, f := range shippedConfigs(t) {
		name, _ := filepath.Rel(repoRoot, f)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate(s, data); err != nil {
				t.Errorf("schema: %v", err)
			}
			if _, err := config.Load(f); err != nil {
				t.Errorf("config.Load: %v", err)
			}
		})
	}
}

// Every YAML example in the configuration docs matches the schema: the
// reference's own examples (each key at its default) and the guides'.
func TestDocsExamplesMatchTheSchema(t *testing.T) {
	s := compileSchema(t)
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	for _, doc := range []string{"docs/config.md", "docs/configuration.md"} {
		md, err := os.ReadFile(filepath.Join(repoRoot, doc))
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range block.FindAllSubmatch(md, -1) {
			t.Run(fmt.Sprintf("%s/%d", doc, i+1), func(t *testing.T) {
				if err := validate(s, m[1]); err != nil {
					t.Errorf("%v\n%s", err, m[1])
				}
			})
		}
	}
}

// app is a valid config with one app, whose keys (indented for it) are
// extra.
func app(extra string) string {
	return "apps:\n  web:\n    command: [node, server.js]\n" + extra
}

// The schema refuses what gatehouse refuses for its form, and accepts
// what it accepts: a misspelt key fails in the editor, named, as it does
// in gatehouse validate, and every written form the decoder takes passes.
func TestSchemaAgreesWithTheDecoder(t *testing.T) {
	s := compileSchema(t)
	tests := []struct {
		name string
		yaml string
		// wantErr is a text both the schema's and gatehouse's errors
		// must name; "" when both must accept the config.
		wantErr string
	}{
		{"misspelt key under an app", app("    instnaces: 2\n"), "instnaces"},
		{"misspelt key at the top", "listn: \":8080\"\n" + app(""), "listn"},
		{"misspelt key in a block", app("    health: {path: /healthz, intervall: 2s}\n"), "intervall"},
		{"misspelt key in a list item", app("    instances: 2\n    autoscale:\n      max: 4\n      out: [{metrc: held, above: 0}]\n"), "metrc"},
		{"misspelt key in the limits", "limits: {request_bdy: 1MiB}\n" + app(""), "request_bdy"},
		{"misspelt key in a receiver", "alerts:\n  receivers: [{name: ops, url: \"https://hooks.example.com/x\", timout: 5s}]\n" + app(""), "timout"},
		{"an integer written as a string", app("    instances: \"2\"\n"), "instances"},
		{"a duration without a unit", app("    start_timeout: 30\n"), "start_timeout"},
		{"a size with an unknown unit", app("    memory_limit: 1TB\n"), "memory_limit"},
		{"a boolean written as a word", app("    affinity: sure\n"), "affinity"},
		{"a block written as a list", app("    health: [/healthz]\n"), "health"},

		{"durations", app("    start_timeout: 1m30s\n    idle_timeout: 0\n    hold_timeout: \"0\"\n    stop_timeout: 250ms\n"), ""},
		{"sizes", app("    memory_limit: 1.5GiB\n    retry_body_limit: 1024\n    limits: {request_body: 10 mb}\n"), ""},
		{"a command as a string", "apps:\n  web:\n    command: node server.js\n", ""},
		{"status ranges", app("    health: {path: /healthz, status: 200}\n    auto_heal:\n      triggers:\n        status_codes: [{status: \"500-599\", count: 5, interval: 1m}]\n"), ""},
		{"a percentage threshold", app("    instances: 2\n    max_inflight: 5\n    autoscale: {max: 4, out: [{metric: inflight_per_instance, above: 80%}]}\n"), ""},
		{"a string key written as a number", app("    env: {WORKERS: 4, DEBUG: true}\n"), ""},
		{"keys with no value keep their defaults", app("    health:\n    upgrades:\n"), ""},
		// decodeOff and Compress's decodeScalar take these words in any
		// case; the schema only took "off" and false, true or false.
		{"a route's blocks turned off in words", app("    routes:\n      - /\n      - {match: /a/, compress: \"off\", rate_limit: \"false\", basic_auth: no, forward_auth: OFF}\n      - {match: /b/, compress: \"yes\"}\n"), ""},
		{"a block turned off by another word", app("    routes: [/, {match: /a/, rate_limit: \"maybe\"}]\n"), "rate_limit"},
		{"a float", "alerts:\n  receivers: [{name: ops, url: \"https://hooks.example.com/x\"}]\n  error_rate: {above: 0.1}\n" + app(""), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schemaErr := validate(s, []byte(tt.yaml))
			_, loadErr := config.Parse("gatehouse.yaml", []byte(tt.yaml))
			for _, e := range []struct {
				by  string
				err error
			}{{"the schema", schemaErr}, {"gatehouse", loadErr}} {
				switch {
				case tt.wantErr == "" && e.err != nil:
					t.Errorf("%s refused it: %v", e.by, e.err)
				case tt.wantErr != "" && e.err == nil:
					t.Errorf("%s accepted it, want an error naming %q", e.by, tt.wantErr)
				case tt.wantErr != "" && !strings.Contains(e.err.Error(), tt.wantErr):
					t.Errorf("%s's error does not name %q:\n%v", e.by, tt.wantErr, e.err)
				}
			}
		})
	}
}

// An editor pointed at the schema marks a misspelt key in a real config
// and names it, as gatehouse validate does: each example with its
// instances: key misspelt.
func TestMisspeltKeyInAnExampleIsNamed(t *testing.T) {
	s := compileSchema(t)
	files, err := filepath.Glob(filepath.Join(repoRoot, "examples/*/gatehouse.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v, %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, []byte("    instances:")) {
				t.Fatalf("%s has no instances: key to misspell", f)
			}
			bad := bytes.Replace(data, []byte("    instances:"), []byte("    instnaces:"), 1)
			if err := validate(s, bad); err == nil || !strings.Contains(err.Error(), "'instnaces' not allowed") {
				t.Errorf("schema: got %v, want an error naming instnaces", err)
			}
			if _, err := config.Parse(f, bad); err == nil || !strings.Contains(err.Error(), "instnaces: unknown key") {
				t.Errorf("gatehouse: got %v, want an error naming instnaces", err)
			}
		})
	}
}
