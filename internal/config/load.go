package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads, decodes and validates the config file at path, then resolves
// its directories against the file's own directory, so that a config means
// the same thing whatever directory gatehouse is started from. Problems in
// the file come back as Errors.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	c.Resolve(filepath.Dir(path))
	return c, nil
}

// Parse decodes and validates config data; file names it in errors and
// becomes Config.File. Directories are left as written (see Resolve).
// Every problem is collected and returned together as Errors, with a nil
// config: a half-valid config is not safe to run.
func Parse(file string, data []byte) (*Config, error) {
	root, err := parseYAML(file, data)
	if err != nil {
		return nil, err
	}
	c := Default()
	c.File = file
	d := newDecoder(file)
	d.pos[""] = 1
	if root != nil {
		d.setBudget(root)
		d.pos[""] = root.Line
		if root.Kind == yaml.MappingNode {
			d.decode(root, reflect.ValueOf(c).Elem(), "")
		} else {
			d.errorf(root.Line, "", "config must be a mapping of keys (listen, admin, apps, ...), got %s", d.kindName(root))
		}
	}
	c.Order = d.keys["apps"]
	c.pos = d.pos
	for name, app := range c.Apps {
		app.Name = name
	}
	if d.exhausted {
		// What was decoded is a fragment: checking it would only add
		// problems that are not in the file.
		return nil, d.errs.sorted()
	}
	c.inheritLimits(func(path string) bool { _, ok := d.pos[path]; return ok && !d.nulls[path] })
	errs := append(d.errs, c.validate(d.pos, d.failed, d.nulls)...)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// parseYAML returns the root node of the single document in data, nil for
// an empty document. A syntax error becomes a FieldError with its line, so
// that it prints like every other problem.
func parseYAML(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, Errors{syntaxError(file, err)}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			return nil, Errors{syntaxError(file, err)}
		}
		return nil, Errors{{File: file, Line: line, Msg: "more than one YAML document; put everything in one"}}
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return resolveAlias(doc.Content[0]), nil
	}
	return &doc, nil
}

// yamlLine matches yaml.v3's "yaml: line N: problem" messages.
var yamlLine = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// parserProblems are the messages of yaml.v3's parser, as opposed to its
// scanner. The parser reports a 0-based line (the scanner a 1-based one)
// and leaves the line out when it is 0, so these need one added.
var parserProblems = []string{"did not find expected", "found undefined tag handle", "found duplicate %", "found incompatible YAML"}

func syntaxError(file string, err error) *FieldError {
	m := yamlLine.FindStringSubmatch(err.Error())
	if m == nil {
		return &FieldError{File: file, Msg: "invalid YAML: " + err.Error()}
	}
	line, _ := strconv.Atoi(m[1]) // 0 when absent
	for _, p := range parserProblems {
		if strings.HasPrefix(m[2], p) {
			line++
			break
		}
	}
	return &FieldError{File: file, Line: line, Msg: "invalid YAML: " + m[2]}
}
