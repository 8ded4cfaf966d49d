package configref

import (
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Reference is gatehouse.yaml's every key, by section, with what the
// docs and the schema say of it.
type Reference struct {
	// Sections are the blocks of the file in the order a walk of the
	// Config type first reaches them; the first is the top level.
	Sections []*Section
	// Values are the types with a written form of their own (a duration,
	// a size, …), with their doc comments, in a fixed order.
	Values []Value
	// goKeys maps a Go name to the key path the docs show for it:
	// "Limits.RequestBody" to limits.request_body, "AppLimits" to
	// apps.<name>.limits.
	goKeys map[string]string
}

// Section is one struct type of the config: a block of keys, found at
// one or more paths ("apps.<name>.autoscale.out[]" and "…in[]" share
// ScaleRule).
type Section struct {
	Paths []string
	Type  reflect.Type
	Doc   string
	Keys  []*Key
}

// Key is one yaml key of a section.
type Key struct {
	Name  string // the yaml key
	Field string // the Go field
	Type  reflect.Type
	Doc   string
	// Default is the value an absent key takes, as JSON would hold it
	// ("30s" for a duration); nil when there is none to state (the doc
	// then says what absence means). DefaultText is how the docs show it,
	// "" with no default.
	Default     any
	DefaultText string
	// Block is the section of a key whose value is a block, a list of
	// blocks or a map of them; nil for a key with a plain value.
	Block *Section
}

// Value is a type written in a form of its own, as decode.go reads it.
type Value struct {
	Type reflect.Type
	Name string // as the docs name it: "duration"
	Doc  string
}

// keyPaths gives each path of the section joined with the key.
func (s *Section) keyPaths(k *Key) []string {
	out := make([]string, len(s.Paths))
	for i, p := range s.Paths {
		out[i] = joinPath(p, k.Name)
	}
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// values are the types decode.go reads from one scalar (or, for a
// command, a string or a list), not by their Go kind.
var values = []struct {
	t    reflect.Type
	name string
}{
	{reflect.TypeFor[config.Duration](), "duration"},
	{reflect.TypeFor[config.Size](), "size"},
	{reflect.TypeFor[config.Command](), "command"},
	{reflect.TypeFor[config.StatusRange](), "status range"},
	{reflect.TypeFor[config.Threshold](), "threshold"},
}

func valueName(t reflect.Type) (string, bool) {
	for _, v := range values {
		if v.t == t {
			return v.name, true
		}
	}
	return "", false
}

// defaults are the values a block starts from when it appears, as
// decode.go's newValue makes them; a block reached through a struct
// field (limits:, health:) starts from its parent's.
var defaults = map[reflect.Type]func() reflect.Value{
	reflect.TypeFor[config.Config]():    func() reflect.Value { return reflect.ValueOf(config.Default()).Elem() },
	reflect.TypeFor[config.App]():       func() reflect.Value { return reflect.ValueOf(config.NewApp("")).Elem() },
	reflect.TypeFor[config.AutoHeal]():  func() reflect.Value { return reflect.ValueOf(config.NewAutoHeal()).Elem() },
	reflect.TypeFor[config.Autoscale](): func() reflect.Value { return reflect.ValueOf(config.NewAutoscale()).Elem() },
	reflect.TypeFor[config.TLS]():       func() reflect.Value { return reflect.ValueOf(config.NewTLS()).Elem() },
	reflect.TypeFor[config.ACME]():      func() reflect.Value { return reflect.ValueOf(config.NewACME()).Elem() },
	reflect.TypeFor[config.DNS]():       func() reflect.Value { return reflect.ValueOf(config.NewDNS()).Elem() },
	reflect.TypeFor[config.Alerts]():    func() reflect.Value { return reflect.ValueOf(config.NewAlerts()).Elem() },
	reflect.TypeFor[config.Receiver]():  func() reflect.Value { return reflect.ValueOf(config.NewReceiver()).Elem() },
	reflect.TypeFor[config.Tracing]():   func() reflect.Value { return reflect.ValueOf(config.NewTracing()).Elem() },
}

// inherited are the blocks whose keys, left out, take another block's
// value rather than one of their own: an app's limits: the top-level
// limits:.
var inherited = map[reflect.Type]string{
	reflect.TypeFor[config.AppLimits](): "limits",
}

// Build walks the Config type and reads the doc comments from the Go
// source of internal/config in src.
func Build(src fs.FS) (*Reference, error) {
	c, err := readComments(src)
	if err != nil {
		return nil, err
	}
	b := &builder{c: c, byType: map[reflect.Type]*Section{}}
	root := reflect.TypeFor[config.Config]()
	if _, err := b.section(root, "", reflect.Value{}); err != nil {
		return nil, err
	}
	r := &Reference{Sections: b.sections, goKeys: map[string]string{}}
	for _, v := range values {
		r.Values = append(r.Values, Value{Type: v.t, Name: v.name, Doc: c.types[v.t.Name()]})
	}
	for _, s := range r.Sections {
		if len(s.Paths) != 1 {
			continue
		}
		if s.Paths[0] != "" && goWord.MatchString(s.Type.Name()) {
			r.goKeys[s.Type.Name()] = s.Paths[0]
		}
		for _, k := range s.Keys {
			r.goKeys[s.Type.Name()+"."+k.Field] = joinPath(s.Paths[0], k.Name)
		}
	}
	return r, nil
}

type builder struct {
	c        *comments
	sections []*Section
	byType   map[reflect.Type]*Section
}

// section returns the section of struct type t found at path, whose
// values start as def (invalid: as the type's defaults say, else zero).
// A type met again gains the path, and its blocks theirs.
func (b *builder) section(t reflect.Type, path string, def reflect.Value) (*Section, error) {
	if s, ok := b.byType[t]; ok {
		s.Paths = append(s.Paths, path)
		for _, k := range s.Keys {
			if k.Block != nil {
				if _, err := b.section(k.Block.Type, blockPath(path, k), reflect.Value{}); err != nil {
					return nil, err
				}
			}
		}
		return s, nil
	}
	s := &Section{Paths: []string{path}, Type: t, Doc: b.c.types[t.Name()]}
	b.byType[t] = s
	b.sections = append(b.sections, s)
	if mk, ok := defaults[t]; ok {
		def = mk()
	}
	if !def.IsValid() {
		def = reflect.New(t).Elem()
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		k := &Key{Name: name, Field: f.Name, Type: f.Type, Doc: b.c.fields[t.Name()][f.Name]}
		s.Keys = append(s.Keys, k)
		if bt := blockType(f.Type); bt != nil {
			sub := def.Field(i)
			if sub.Kind() == reflect.Pointer {
				sub = derefOrInvalid(sub)
			}
			if sub.IsValid() && sub.Kind() != reflect.Struct {
				sub = reflect.Value{} // a list or map of blocks: each starts anew
			}
			var err error
			if k.Block, err = b.section(bt, blockPath(path, k), sub); err != nil {
				return nil, err
			}
			continue
		}
		if err := checkType(f.Type); err != nil {
			return nil, fmt.Errorf("%s: %w", joinPath(path, name), err)
		}
		if from, ok := inherited[t]; ok {
			k.DefaultText = "the top-level `" + joinPath(from, name) + "`"
			continue
		}
		k.Default, k.DefaultText = defaultOf(def.Field(i), k.Doc)
	}
	if len(s.Keys) == 0 {
		return nil, fmt.Errorf("%s: type %s has no yaml keys: give it yaml tags, or teach configref its written form", path, t)
	}
	return s, nil
}

func derefOrInvalid(v reflect.Value) reflect.Value {
	if v.IsNil() {
		return reflect.Value{}
	}
	return v.Elem()
}

// blockPath is where a block key's section is: "apps.<name>" for a map
// of blocks, "alerts.receivers[]" for a list of them.
func blockPath(path string, k *Key) string {
	p := joinPath(path, k.Name)
	t := k.Type
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Map:
		return p + ".<name>"
	case reflect.Slice:
		return p + "[]"
	}
	return p
}

// blockType is the struct type of a block key: a struct, or a pointer,
// list or map of them; nil for a plain value.
func blockType(t reflect.Type) reflect.Type {
	if _, ok := valueName(t); ok {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		return blockType(t.Elem())
	case reflect.Struct:
		return t
	}
	return nil
}

// checkType refuses a type decode.go does not read, so that a new kind
// of value is taught to the generator rather than documented wrong.
func checkType(t reflect.Type) error {
	if _, ok := valueName(t); ok {
		return nil
	}
	switch t.Kind() {
	case reflect.String, reflect.Int, reflect.Int64, reflect.Bool, reflect.Float64:
		return nil
	case reflect.Pointer, reflect.Slice:
		return checkType(t.Elem())
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return fmt.Errorf("map key %s is not a string", t.Key())
		}
		return checkType(t.Elem())
	}
	return fmt.Errorf("configref does not know how %s is written", t)
}

// zeroDefault matches a doc comment that gives 0 or false as the
// default, so that a zero value is stated only where it is a default and
// not where the doc explains an absent key otherwise ("Required", "the
// app's instances").
var zeroDefault = regexp.MustCompile(`\bDefault (0|false)\b`)

// defaultOf is the default of a plain key whose block starts as v.
func defaultOf(v reflect.Value, doc string) (any, string) {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, ""
		}
		v = v.Elem()
	}
	if v.IsZero() && v.Kind() != reflect.Bool && !zeroDefault.MatchString(doc) {
		return nil, ""
	}
	switch x := v.Interface().(type) {
	case config.Duration:
		s := formatDuration(x.D())
		return s, s
	case config.Size:
		if x == 0 {
			return 0, "0"
		}
		return x.String(), x.String()
	case config.StatusRange:
		return x.String(), x.String()
	case config.Command:
		return []string(x), flowList(x)
	case []string:
		return x, flowList(x)
	case string:
		return x, yamlScalar(x)
	case int:
		return x, fmt.Sprint(x)
	case float64:
		return x, fmt.Sprint(x)
	case bool:
		return x, fmt.Sprint(x)
	}
	return nil, ""
}

// formatDuration writes d in its largest whole unit ("2m", "230s"), as
// the comments and examples write durations, where time.Duration's own
// String would say "2m0s" and "3m50s".
func formatDuration(d time.Duration) string {
	for _, u := range []struct {
		n    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}} {
		if d != 0 && d%u.n == 0 {
			return fmt.Sprint(int64(d/u.n)) + u.name
		}
	}
	if d == 0 {
		return "0s"
	}
	return d.String()
}

// plainScalar matches a string YAML reads back as that string unquoted.
var plainScalar = regexp.MustCompile(`^[A-Za-z0-9./_][A-Za-z0-9./_%+-]*$`)

// yamlScalar writes s as a YAML scalar, quoted when YAML would read it
// as something else or not at all.
func yamlScalar(s string) string {
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "null", "~":
		return fmt.Sprintf("%q", s)
	}
	if _, err := strconv.ParseFloat(s, 64); err == nil || !plainScalar.MatchString(s) {
		return fmt.Sprintf("%q", s)
	}
	return s
}

func flowList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = yamlScalar(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
