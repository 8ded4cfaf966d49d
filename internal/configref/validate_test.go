package configref_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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
// YAML read as the JSON value it stands for, by YAML 1.2's core schema
// (yaml.v3 on its own reads YAML 1.1's numbers too, as "1_000").
func validate(s *jsonschema.Schema, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	var v any
	if len(doc.Content) > 0 {
		v = coreValue(doc.Content[0])
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

// The plain scalars of YAML 1.2's core schema; any other is a string.
var (
	coreNull  = regexp.MustCompile(`^(null|Null|NULL|~|)$`)
	coreBool  = regexp.MustCompile(`^(true|True|TRUE|false|False|FALSE)$`)
	coreInt   = regexp.MustCompile(`^([-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$`)
	coreFloat = regexp.MustCompile(`^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`)
)

// coreValue is the JSON value n stands for in YAML 1.2's core schema.
func coreValue(n *yaml.Node) any {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" && k.Style == 0 {
				merged, _ := coreValue(v).(map[string]any)
				for mk, mv := range merged {
					if _, ok := m[mk]; !ok {
						m[mk] = mv
					}
				}
				continue
			}
			m[k.Value] = coreValue(v)
		}
		return m
	case yaml.SequenceNode:
		out := []any{}
		for _, c := range n.Content {
			out = append(out, coreValue(c))
		}
		return out
	}
	if n.Style != 0 && n.Style != yaml.FlowStyle {
		return n.Value // quoted or a block scalar: a string
	}
	v := n.Value
	switch {
	case coreNull.MatchString(v):
		return nil
	case coreBool.MatchString(v):
		return strings.EqualFold(v, "true")
	case coreInt.MatchString(v):
		digits, base := strings.TrimPrefix(v, "+"), 10
		if p := v[:min(2, len(v))]; p == "0x" || p == "0o" {
			digits, base = v[2:], map[string]int{"0x": 16, "0o": 8}[p]
		}
		i, _ := new(big.Int).SetString(digits, base)
		return json.Number(i.String())
	case coreFloat.MatchString(v):
		f, _ := strconv.ParseFloat(v, 64)
		return f
	}
	return v
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
		// Numbers as YAML 1.2 has them: an editor reads "1_000" and "0b11"
		// as text, "010" as ten, and takes a whole number with a fraction
		// where an integer goes.
		{"integers in hexadecimal, octal and with a leading zero", app("    queue_size: 0x3e8\n    max_inflight: 0o10\n    max_attempts: 02\n"), ""},
		{"whole numbers written with a fraction or an exponent", app("    queue_size: 2.0\n    max_inflight: 1e3\n"), ""},
		{"written forms in numbers YAML 1.2 reads", app("    memory_limit: 0x400\n    idle_timeout: 0x0\n    health: {path: /healthz, status: 200.0}\n"), ""},
		{"digits grouped with underscores", app("    queue_size: 1_000\n"), "queue_size"},
		{"a binary integer", app("    queue_size: 0b11\n"), "queue_size"},
		{"a fraction where an integer goes", app("    queue_size: 2.5\n"), "queue_size"},
		{"a float with underscores", "alerts:\n  receivers: [{name: ops, url: \"https://hooks.example.com/x\"}]\n  error_rate: {above: 0.0_5}\n" + app(""), "above"},
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
