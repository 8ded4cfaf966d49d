package configref_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/configref"
)

// repoRoot is the repository, two levels above this package.
const repoRoot = "../.."

// The committed docs/config.md and schema/gatehouse.schema.json are
// what the config types and their comments make today.
func TestCommittedReferenceIsCurrent(t *testing.T) {
	files, err := configref.Generate(os.DirFS(repoRoot))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{configref.DocsFile, configref.SchemaFile} {
		t.Run(name, func(t *testing.T) {
			committed, err := os.ReadFile(filepath.Join(repoRoot, name))
			if err != nil {
				t.Fatalf("%v: run go generate ./...", err)
			}
			if diff := cmp.Diff(string(committed), string(files[name])); diff != "" {
				t.Errorf("%s is not what the config types make: run go generate ./...\n(-committed +generated):\n%s", name, diff)
			}
		})
	}
}

// keyPaths walks t as decode.go does, by yaml tags, and returns every
// key path: a map's entries as <name>, a list's items as [].
func keyPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		switch t.Kind() {
		case reflect.Slice:
			prefix += "[]"
		case reflect.Map:
			prefix += ".<name>"
		}
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		p := name
		if prefix != "" {
			p = prefix + "." + name
		}
		out = append(out, p)
		out = append(out, keyPaths(f.Type, p)...)
	}
	return out
}

// schemaAt follows a key path through the schema's properties, $refs,
// items and additionalProperties; nil when the path is not there.
func schemaAt(root map[string]any, path string) map[string]any {
	resolve := func(n map[string]any) map[string]any {
		for n != nil {
			ref, ok := n["$ref"].(string)
			if !ok {
				return n
			}
			defs, _ := root["$defs"].(map[string]any)
			n, _ = defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		}
		return nil
	}
	// A block also written as one value (a route as its match) is an
	// anyOf whose first member is the block.
	block := func(n map[string]any) map[string]any {
		n = resolve(n)
		if alts, ok := n["anyOf"].([]any); ok && len(alts) > 0 {
			first, _ := alts[0].(map[string]any)
			return first
		}
		return n
	}
	prop := func(n map[string]any, name string) map[string]any {
		props, _ := block(n)["properties"].(map[string]any)
		p, _ := props[name].(map[string]any)
		return p
	}
	n := root
	for _, seg := range strings.Split(path, ".") {
		if seg == "<name>" {
			n, _ = block(n)["additionalProperties"].(map[string]any)
			continue
		}
		name, list := strings.CutSuffix(seg, "[]")
		n = prop(n, name)
		if list && n != nil {
			n, _ = n["items"].(map[string]any)
		}
		if n == nil {
			return nil
		}
	}
	return n
}

// Every key of the Config type, at any depth, has a property in the
// schema with a description, and a heading of its own in docs/config.md.
func TestEveryKeyIsInSchemaAndDocs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot, configref.SchemaFile))
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	if err := json.Unmarshal(b, &root); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(repoRoot, configref.DocsFile))
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	code := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(string(md), "\n") {
		if rest, ok := strings.CutPrefix(line, "### "); ok {
			for _, m := range code.FindAllStringSubmatch(rest, -1) {
				headings[m[1]] = true
			}
		}
	}
	paths := keyPaths(reflect.TypeFor[config.Config](), "")
	if len(paths) < 100 {
		t.Fatalf("found %d keys in config.Config, want the 100 or more it has", len(paths))
	}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			s := schemaAt(root, p)
			switch {
			case s == nil:
				t.Errorf("%s is not in %s: run go generate ./...", p, configref.SchemaFile)
			case s["description"] == "" || s["description"] == nil:
				t.Errorf("%s has no description in the schema: give its field a doc comment in internal/config", p)
			}
			if !headings[p] {
				t.Errorf("%s has no heading in %s: run go generate ./...", p, configref.DocsFile)
			}
		})
	}
}

// A doc comment that states a default in the form the key is written
// agrees with the default the config's constructors give: the text and
// the value cannot say two things.
func TestStatedDefaultsMatchTheCode(t *testing.T) {
	r, err := configref.Build(os.DirFS(filepath.Join(repoRoot, configref.ConfigSource)))
	if err != nil {
		t.Fatal(err)
	}
	stated := regexp.MustCompile(`\bDefault (?:"([^"]*)"|([0-9][0-9A-Za-z.]*[0-9A-Za-z%]|[0-9]|true|false)(?:[\s.;:,)]|$))`)
	checked := 0
	for _, s := range r.Sections {
		for _, k := range s.Keys {
			m := stated.FindStringSubmatch(k.Doc)
			if m == nil || k.DefaultText == "" || strings.HasPrefix(k.DefaultText, "the ") {
				continue
			}
			checked++
			got, want := strings.Trim(k.DefaultText, `"`), m[1]+m[2]
			if got != want && !equalValues(got, want) {
				t.Errorf("%s: the comment says Default %s, the code's default is %s", s.Paths[0]+"."+k.Name, want, got)
			}
		}
	}
	if checked < 40 {
		t.Errorf("checked %d stated defaults, want the 40 or more the comments state", checked)
	}
}

// equalValues reports whether two written forms of a duration or a size
// are the same value ("1m" and "60s", "1MiB" and "1048576").
func equalValues(a, b string) bool {
	da, errA := config.ParseDuration(a)
	db, errB := config.ParseDuration(b)
	if errA == nil && errB == nil {
		return da == db
	}
	sa, errA := config.ParseSize(a)
	sb, errB := config.ParseSize(b)
	return errA == nil && errB == nil && sa == sb
}
