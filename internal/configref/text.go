package configref

import (
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"strings"
)

// Files written by Generate, relative to the repository root.
const (
	DocsFile   = "docs/config.md"
	SchemaFile = "schema/gatehouse.schema.json"
	// ConfigSource is internal/config, whose doc comments are read.
	ConfigSource = "internal/config"
)

// Generate builds the reference from the repository at root (an
// fs.FS of it) and returns each output file's content by its path
// relative to root.
func Generate(root fs.FS) (map[string][]byte, error) {
	src, err := fs.Sub(root, ConfigSource)
	if err != nil {
		return nil, fmt.Errorf("config source: %w", err)
	}
	r, err := Build(src)
	if err != nil {
		return nil, err
	}
	schema, err := r.Schema()
	if err != nil {
		return nil, fmt.Errorf("write the schema: %w", err)
	}
	return map[string][]byte{DocsFile: r.Markdown(), SchemaFile: schema}, nil
}

// typeName says what a key's value is, as the docs name it.
func typeName(t reflect.Type) string {
	if n, ok := valueName(t); ok {
		return n
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Slice:
		return "list of " + typeName(t.Elem()) + "s"
	case reflect.Map:
		return "map of names to " + typeName(t.Elem()) + "s"
	case reflect.Struct:
		return "block"
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int64:
		return "integer"
	case reflect.Bool:
		return "boolean"
	case reflect.Float64:
		return "number"
	}
	return t.String()
}

// Go names in doc comments that the reader of the YAML knows by their
// key: "Limits.RequestBody", a field of the same block ("AdminToken"),
// a block's type ("AppLimits"), a "(see RedactValue)" that points into
// the Go code.
var (
	fieldRef = regexp.MustCompile(`\b([A-Z][A-Za-z0-9]*)\.([A-Z][A-Za-z0-9]*)\b`)
	seeRef   = regexp.MustCompile(`\s*\(see ([A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)?)\)`)
	goWord   = regexp.MustCompile(`\b[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*\b`)
	oneWord  = regexp.MustCompile(`\b[A-Z][a-z0-9]+\b`)
)

// describe is k's doc comment, a key of s, as paragraphs for a reader
// of the YAML (see prose).
func (r *Reference) describe(s *Section, k *Key, code bool) []string {
	return r.prose(k.Doc, k.Field, k.Name, s, code)
}

// prose is a doc comment as paragraphs for a reader of the YAML: the Go
// name that opens it (goName) becomes key, and the Go names of keys and
// blocks their key paths (siblings: those of s's keys). code wraps keys
// as markdown code; without it they are left bare, for the schema.
func (r *Reference) prose(doc, goName, key string, s *Section, code bool) []string {
	quote := func(x string) string {
		if code {
			return "`" + x + "`"
		}
		return x
	}
	sibling := func(name string) (string, bool) {
		if s != nil {
			for _, k := range s.Keys {
				if k.Field == name {
					return k.Name, true
				}
			}
		}
		return "", false
	}
	lookup := func(name string) (string, bool) {
		if k, ok := sibling(name); ok {
			return k, true
		}
		p, ok := r.goKeys[name]
		return p, ok
	}
	ps := paragraphs(doc)
	for i, p := range ps {
		if i == 0 && goName != "" && key != "" {
			if rest, ok := strings.CutPrefix(p, goName); ok && (rest == "" || strings.ContainsAny(rest[:1], " :,")) {
				p = "\x00" + key + "\x00" + rest
			}
		}
		p = seeRef.ReplaceAllStringFunc(p, func(m string) string {
			if k, ok := lookup(seeRef.FindStringSubmatch(m)[1]); ok {
				return " (see \x00" + k + "\x00)"
			}
			return ""
		})
		p = fieldRef.ReplaceAllStringFunc(p, func(m string) string {
			if k, ok := r.goKeys[m]; ok {
				return "\x00" + k + "\x00"
			}
			return m
		})
		p = goWord.ReplaceAllStringFunc(p, func(m string) string {
			if k, ok := lookup(m); ok {
				return "\x00" + k + "\x00"
			}
			return m
		})
		// A one-word Go name ("Path", "Max") is taken for a key only
		// when it names one of this block's keys.
		p = oneWord.ReplaceAllStringFunc(p, func(m string) string {
			if k, ok := sibling(m); ok {
				return "\x00" + k + "\x00"
			}
			return m
		})
		// Keys are marked while the Go names are replaced, so that a key
		// path is never read as a Go name, and quoted at the end.
		for strings.Contains(p, "\x00") {
			before, rest, _ := strings.Cut(p, "\x00")
			k, after, _ := strings.Cut(rest, "\x00")
			p = before + quote(k) + after
		}
		ps[i] = p
	}
	return ps
}
