package configref

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Patterns of the written forms, as config.ParseDuration, ParseSize,
// ParseStatusRange and decodeThreshold accept them. They use only what
// ECMAScript (editors) and RE2 (Go) regular expressions share.
const (
	durationPattern = `^\s*([+-]?(0+\.?0*|\.0+)|\+?(([0-9]+\.?[0-9]*|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)\s*$`
	sizePattern     = `^\s*\+?([0-9]+\.?[0-9]*|\.[0-9]+)\s*([bB]|[kKmMgG][iI]?[bB])?\s*$`
	statusPattern   = `^\s*[0-9]{3}\s*(-\s*[0-9]{3}\s*)?$`
	thresholdPatten = `^\s*([0-9][0-9_]*\.?[0-9_]*|\.[0-9_]+)([eE][+-]?[0-9]+)?\s*%?\s*$`
)

// null is allowed wherever a value is: the decoder leaves a key written
// with no value at its default.
var null = obj{{"type", "null"}}

// scalar is what a string key takes: any single YAML value, read as
// the text it was written with (decodeString).
var scalar = []string{"string", "number", "boolean", "null"}

// valueSchemas are the $defs of the written forms.
func valueSchemas() map[string]obj {
	return map[string]obj{
		"Duration": {{"anyOf", []any{
			obj{{"type", "string"}, {"pattern", durationPattern}},
			obj{{"type", "number"}, {"const", 0}},
			null,
		}}},
		"Size": {{"anyOf", []any{
			obj{{"type", "string"}, {"pattern", sizePattern}},
			obj{{"type", "integer"}, {"minimum", 0}},
			null,
		}}},
		"Command": {{"anyOf", []any{
			obj{{"type", []string{"string", "number", "boolean"}}},
			obj{{"type", "array"}, {"items", obj{{"type", []string{"string", "number", "boolean"}}}}},
			null,
		}}},
		"StatusRange": {{"anyOf", []any{
			obj{{"type", "string"}, {"pattern", statusPattern}},
			obj{{"type", "integer"}, {"minimum", 100}, {"maximum", 599}},
			null,
		}}},
		"Threshold": {{"anyOf", []any{
			obj{{"type", "string"}, {"pattern", thresholdPatten}},
			obj{{"type", "number"}, {"minimum", 0}},
			null,
		}}},
	}
}

// Schema is schema/gatehouse.schema.json: the top level's keys as its
// properties, every other block and written form under $defs by its Go
// type's name, and additionalProperties false on every block so that a
// misspelt key fails.
func (r *Reference) Schema() ([]byte, error) {
	defs := obj{}
	vs := valueSchemas()
	for _, v := range r.Values {
		d := append(obj{{"description", strings.Join(r.prose(v.Doc, v.Type.Name(), v.Name, nil, false), "\n\n")}}, vs[v.Type.Name()]...)
		defs = append(defs, kv{v.Type.Name(), d})
	}
	root := r.Sections[0]
	for _, s := range r.Sections[1:] {
		defs = append(defs, kv{s.Type.Name(), r.block(s)})
	}
	doc := obj{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"title", "gatehouse.yaml"},
	}
	doc = append(doc, r.block(root)...)
	doc = append(doc, kv{"$defs", defs})
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// block is the schema of a section's type.
func (r *Reference) block(s *Section) obj {
	props := obj{}
	for _, k := range s.Keys {
		p := r.typeSchema(k.Type)
		p = append(p, kv{"description", strings.Join(r.describe(s, k, false), "\n\n")})
		if k.Default != nil {
			p = append(p, kv{"default", k.Default})
		}
		props = append(props, kv{k.Name, p})
	}
	o := obj{}
	if s.Paths[0] != "" {
		goName, key := "", ""
		if len(s.Paths) == 1 {
			goName, key = s.Type.Name(), s.Paths[0]
		}
		o = append(o, kv{"description", strings.Join(r.prose(s.Doc, goName, key, s, false), "\n\n")})
	}
	body := obj{
		{"type", []string{"object", "null"}},
		{"additionalProperties", false},
		{"properties", props},
	}
	if alt, ok := scalarForms[s.Type]; ok {
		return append(o, kv{"anyOf", []any{body, alt}})
	}
	return append(o, body...)
}

// scalarForms are the blocks decode.go also reads from one value (their
// decodeScalar): a route as its match, compress as true or false, the
// blocks a route turns off as "off".
var scalarForms = map[reflect.Type]obj{
	reflect.TypeFor[config.Route]():            {{"type", "string"}},
	reflect.TypeFor[config.Compress]():         onOffForm,
	reflect.TypeFor[config.RequestRateLimit](): offForm,
	reflect.TypeFor[config.BasicAuth]():        offForm,
	reflect.TypeFor[config.ForwardAuth]():      offForm,
}

// The words decodeOff and Compress's decodeScalar take, in any case and
// with spaces around: a YAML 1.2 editor reads off, no and yes as
// strings, and gatehouse takes them.
const (
	offWords   = `[oO][fF][fF]|[fF][aA][lL][sS][eE]|[nN][oO]`
	onWords    = `[tT][rR][uU][eE]|[oO][nN]|[yY][eE][sS]`
	offPattern = `^\s*(` + offWords + `)\s*$`
	onOff      = `^\s*(` + onWords + `|` + offWords + `)\s*$`
)

var (
	offForm   = obj{{"anyOf", []any{obj{{"const", false}}, obj{{"type", "string"}, {"pattern", offPattern}}}}}
	onOffForm = obj{{"anyOf", []any{obj{{"type", "boolean"}}, obj{{"type", "string"}, {"pattern", onOff}}}}}
)

// typeSchema is the schema of a value of type t; checkType has refused
// any t it does not cover.
func (r *Reference) typeSchema(t reflect.Type) obj {
	if _, ok := valueName(t); ok {
		return obj{{"$ref", "#/$defs/" + t.Name()}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return r.typeSchema(t.Elem())
	case reflect.Struct:
		return obj{{"$ref", "#/$defs/" + t.Name()}}
	case reflect.Slice:
		return obj{{"type", []string{"array", "null"}}, {"items", r.typeSchema(t.Elem())}}
	case reflect.Map:
		return obj{{"type", []string{"object", "null"}}, {"additionalProperties", r.typeSchema(t.Elem())}}
	case reflect.String:
		return obj{{"type", scalar}}
	case reflect.Int, reflect.Int64:
		return obj{{"type", []string{"integer", "null"}}}
	case reflect.Bool:
		return obj{{"type", []string{"boolean", "null"}}}
	case reflect.Float64:
		return obj{{"type", []string{"number", "null"}}}
	}
	panic("configref: no schema for " + t.String())
}

// obj is a JSON object that keeps its keys in the order written, so
// that the committed schema reads in the order of the config types and
// regenerates byte for byte.
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(e.k); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1)
		b.WriteByte(':')
		if err := enc.Encode(e.v); err != nil {
			return nil, err
		}
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}
