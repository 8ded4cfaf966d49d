package config

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder walks a yaml.Node tree into Go values by reflection. yaml.v3's own
// decoder stops at the first type error and cannot say which keys were
// explicit; this one keeps going, so one run reports every problem, and it
// records the line of every key path for the semantic checks that follow.
type decoder struct {
	file string
	errs Errors
	pos  positions
	// keys lists each map's keys in file order, by the map's path; it is
	// how Config.Order keeps the order apps are declared in.
	keys map[string][]string
	// failed holds the paths that could not be decoded. Their values are
	// left at defaults or zero, and validation must not then report those
	// as a second, misleading problem ("must be > 0" after "needs a unit").
	failed map[string]bool
	// nulls holds the key paths written with no value ("request_body:",
	// "min_size: null"): they keep their defaults, as keys not written
	// do, so the checks that ask whether a key was written must not
	// count them.
	nulls map[string]bool
	// secret is how many secret fields (see SecretTag) the value being
	// decoded lies under: its messages then do not quote it.
	secret int
	// budget is how many more nodes and keys may be decoded. An alias is
	// decoded again wherever it is used, so a small file of aliases of
	// aliases (or merge keys of merge keys) could take hours and all
	// memory; the budget stops it with one error instead.
	budget int
	// exhausted is set once budget has run out; nothing more is decoded.
	exhausted bool
	// merging holds the mappings whose merge keys are being applied, so
	// that a mapping merging itself ("web: &a {<<: *a}") is an error
	// rather than an endless recursion.
	merging map[*yaml.Node]bool
}

// Decoding budget: every node of the document once, ten times over for
// aliases, and never less than minBudget. Reuse is linear and legitimate
// (hundreds of apps each merging a defaults block, or sharing an env
// anchor of hundreds of variables, expands to a few hundred thousand
// nodes from a file of a thousand lines), so the floor is well above it;
// a nested-alias bomb reaches it in a fraction of a second.
const (
	budgetPerNode = 10
	minBudget     = 1_000_000
)

func newDecoder(file string) *decoder {
	return &decoder{file: file, pos: positions{}, keys: map[string][]string{}, failed: map[string]bool{},
		nulls: map[string]bool{}, budget: minBudget, merging: map[*yaml.Node]bool{}}
}

// setBudget sizes the budget to the document rooted at root.
func (d *decoder) setBudget(root *yaml.Node) {
	d.budget = max(minBudget, budgetPerNode*countNodes(root))
}

// countNodes counts the nodes written in the document, an alias as one.
func countNodes(n *yaml.Node) int {
	count := 1
	for _, c := range n.Content {
		count += countNodes(c)
	}
	return count
}

// spend takes one unit of the budget for n, reporting false (and, the
// first time, an error at n's line) once it has run out.
func (d *decoder) spend(n *yaml.Node, path string) bool {
	if d.exhausted {
		return false
	}
	if d.budget--; d.budget < 0 {
		d.exhausted = true
		d.errorf(n.Line, path, "aliases or merge keys (<<) expand to too much; write the config out rather than through nested aliases")
		return false
	}
	return true
}

func (d *decoder) errorf(line int, path, format string, args ...any) {
	d.failed[path] = true
	d.errs = append(d.errs, &FieldError{File: d.file, Line: line, Path: path, Msg: HideURLPasswords(fmt.Sprintf(format, args...))})
}

var (
	durationType    = reflect.TypeFor[Duration]()
	sizeType        = reflect.TypeFor[Size]()
	commandType     = reflect.TypeFor[Command]()
	statusRangeType = reflect.TypeFor[StatusRange]()
	appType         = reflect.TypeFor[App]()
	autoHealType    = reflect.TypeFor[AutoHeal]()
	autoscaleType   = reflect.TypeFor[Autoscale]()
	tlsType         = reflect.TypeFor[TLS]()
	acmeType        = reflect.TypeFor[ACME]()
	dnsType         = reflect.TypeFor[DNS]()
)

// decode stores n into v (which must be settable). A null node leaves v as
// it is, so "health:" with nothing under it keeps the defaults.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.spend(n, path) {
		return
	}
	n = resolveAlias(n)
	if isNull(n) {
		return
	}
	switch v.Type() {
	case durationType:
		d.scalar(n, v, path, "a duration", decodeDuration)
		return
	case sizeType:
		d.scalar(n, v, path, "a size", decodeSize)
		return
	case statusRangeType:
		d.scalar(n, v, path, "a status range", decodeStatusRange)
		return
	case commandType:
		d.command(n, v, path)
		return
	case thresholdType:
		d.scalar(n, v, path, "a number", decodeThreshold)
		return
	}
	if n.Kind == yaml.ScalarNode && v.CanAddr() {
		if sf, ok := v.Addr().Interface().(scalarForm); ok {
			if err := sf.decodeScalar(n.Value); err != nil {
				d.errorf(n.Line, path, "%v", err)
			}
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(newValue(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.String:
		d.scalar(n, v, path, "a string", decodeString)
	case reflect.Int, reflect.Int64:
		d.scalar(n, v, path, "an integer", decodeInt)
	case reflect.Bool:
		d.scalar(n, v, path, "true or false", decodeBool)
	case reflect.Float64:
		d.scalar(n, v, path, "a number", decodeFloat)
	default:
		// A field of a type the schema does not use: a programming error,
		// reported rather than panicking so the user still gets a message.
		d.errorf(n.Line, path, "cannot decode into %s", v.Type())
	}
}

// scalarForm is a block that may also be written as one value: a route
// as its match string, compress as true or false, rate_limit and the auth
// blocks as "off".
type scalarForm interface{ decodeScalar(string) error }

// newValue returns a pointer to a fresh T, with T's defaults where the
// schema has them: an app or auto_heal block that appears starts from its
// defaults, and the keys written override them.
func newValue(t reflect.Type) reflect.Value {
	switch t {
	case appType:
		return reflect.ValueOf(NewApp(""))
	case autoHealType:
		return reflect.ValueOf(NewAutoHeal())
	case autoscaleType:
		return reflect.ValueOf(NewAutoscale())
	case tlsType:
		return reflect.ValueOf(NewTLS())
	case acmeType:
		return reflect.ValueOf(NewACME())
	case dnsType:
		return reflect.ValueOf(NewDNS())
	case alertsType:
		return reflect.ValueOf(NewAlerts())
	case receiverType:
		return reflect.ValueOf(NewReceiver())
	case tracingType:
		return reflect.ValueOf(NewTracing())
	}
	return reflect.New(t)
}

// resolveAlias follows *alias to its anchor. The schema has no recursive
// types, so walking an alias always ends, even one inside its own anchor.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// kindName describes a node for "must be X, got Y" messages. A scalar is
// quoted, unless it was written where a secret goes (see SecretTag):
// a token or header value misplaced must not be echoed into a log.
func (d *decoder) kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if d.secret > 0 {
			return "a single value (not shown: it is a secret)"
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// scalar decodes a scalar node with parse, reporting a wrong kind of node
// or a value parse rejects.
func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path, want string, parse func(*yaml.Node, reflect.Value) error) {
	if n.Kind != yaml.ScalarNode {
		d.errorf(n.Line, path, "must be %s, got %s", want, d.kindName(n))
		return
	}
	if err := parse(n, v); err != nil {
		if d.secret > 0 {
			d.errorf(n.Line, path, "must be %s (the value is not shown: it is a secret)", want)
			return
		}
		d.errorf(n.Line, path, "%v", err)
	}
}

func decodeString(n *yaml.Node, v reflect.Value) error {
	v.SetString(n.Value)
	return nil
}

func decodeInt(n *yaml.Node, v reflect.Value) error {
	if !isNumberNode(n) {
		return fmt.Errorf("must be an integer, got %q", n.Value)
	}
	i, err := coreInt(n.Value)
	switch {
	case errors.Is(err, errYAML11Number):
		return fmt.Errorf("must be an integer, got %q, %s: write e.g. 1000, 0x3e8 or 0o1750", n.Value, yaml11Only)
	case errors.Is(err, errNotWhole):
		return fmt.Errorf("must be an integer, got %q", n.Value)
	case err != nil || v.OverflowInt(i):
		return fmt.Errorf("integer %q is out of range", n.Value)
	}
	v.SetInt(i)
	return nil
}

// yaml11Only explains why a number yaml.v3 reads is refused.
const yaml11Only = "which only YAML 1.1 reads as a number (an editor reads it as text)"

func decodeBool(n *yaml.Node, v reflect.Value) error {
	b, err := strconv.ParseBool(strings.ToLower(n.Value))
	if n.ShortTag() != "!!bool" || err != nil {
		return fmt.Errorf("must be true or false, got %q", n.Value)
	}
	v.SetBool(b)
	return nil
}

func decodeDuration(n *yaml.Node, v reflect.Value) error {
	dur, err := parseNumberText(n, ParseDuration)
	if err != nil {
		return err
	}
	v.SetInt(int64(dur))
	return nil
}

func decodeSize(n *yaml.Node, v reflect.Value) error {
	s, err := parseNumberText(n, ParseSize)
	if err != nil {
		return err
	}
	v.SetInt(int64(s))
	return nil
}

func decodeStatusRange(n *yaml.Node, v reflect.Value) error {
	r, err := parseNumberText(n, ParseStatusRange)
	if err != nil {
		return err
	}
	v.Set(reflect.ValueOf(r))
	return nil
}

// parseNumberText parses n's value with parse, a number as YAML 1.2
// reads it (numberText). A value refused is named as it was written.
func parseNumberText[T any](n *yaml.Node, parse func(string) (T, error)) (T, error) {
	text := numberText(n)
	v, err := parse(text)
	if err != nil && text != n.Value {
		if _, asWritten := parse(n.Value); asWritten != nil {
			err = asWritten
		}
	}
	return v, err
}

// command decodes a string (run with sh -c) or a list of strings (an argv).
// An empty string or list decodes to an empty Command, which validation
// reports where a command is required.
func (d *decoder) command(n *yaml.Node, v reflect.Value, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
		if strings.TrimSpace(n.Value) == "" {
			v.Set(reflect.ValueOf(Command{}))
			return
		}
		v.Set(reflect.ValueOf(ShellCommand(n.Value)))
	case yaml.SequenceNode:
		argv := Command{}
		for i, item := range n.Content {
			item = resolveAlias(item)
			if item.Kind != yaml.ScalarNode || isNull(item) {
				d.errorf(item.Line, indexPath(path, i), "must be a string, got %s", d.kindName(item))
				continue
			}
			argv = append(argv, item.Value)
		}
		v.Set(reflect.ValueOf(argv))
	default:
		d.errorf(n.Line, path, "must be a string or a list of strings, got %s", d.kindName(n))
	}
}

// sequence decodes a list, appending each item to a fresh slice.
func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n.Line, path, "must be a list, got %s", d.kindName(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		p := indexPath(path, i)
		d.pos[p] = item.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(item, elem, p)
		out = reflect.Append(out, elem)
	}
	v.Set(out)
}

// pairs calls fn for each key/value of a mapping, merge keys ("<<: *base")
// first so that keys written beside them win, as YAML specifies. Keys must
// be unique: yaml.v3 builds a node tree without checking, so a repeated key
// is reported here and only its first occurrence is used.
func (d *decoder) pairs(n *yaml.Node, path string, fn func(key, val *yaml.Node)) {
	var merges, firsts []int
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i]
		if !d.spend(key, path) {
			return
		}
		switch {
		case key.Kind == yaml.ScalarNode && key.ShortTag() == "!!merge":
			merges = append(merges, i)
		case key.Kind != yaml.ScalarNode:
			d.errorf(key.Line, path, "keys must be strings, got %s", d.kindName(key))
		default:
			if first, dup := seen[key.Value]; dup {
				d.errorf(key.Line, joinPath(path, key.Value), "duplicate key (first at line %d)", first)
				continue
			}
			seen[key.Value] = key.Line
			firsts = append(firsts, i)
		}
	}
	d.merging[n] = true
	defer delete(d.merging, n)
	for _, i := range merges {
		d.merge(n.Content[i+1], path, fn)
	}
	for _, i := range firsts {
		if d.exhausted {
			return
		}
		fn(n.Content[i], n.Content[i+1])
	}
}

// merge applies a merge key's value: a mapping or a list of mappings.
func (d *decoder) merge(m *yaml.Node, path string, fn func(key, val *yaml.Node)) {
	if !d.spend(m, path) {
		return
	}
	alias := m
	m = resolveAlias(m)
	switch m.Kind {
	case yaml.MappingNode:
		if d.merging[m] {
			d.errorf(alias.Line, path, "merge key (<<) refers to a mapping that contains it")
			return
		}
		d.pairs(m, path, fn)
	case yaml.SequenceNode:
		for _, item := range m.Content {
			d.merge(item, path, fn)
		}
	default:
		d.errorf(m.Line, path, "merge key (<<) must refer to a mapping, got %s", d.kindName(m))
	}
}

// structure decodes a mapping into a struct by yaml tags. An unknown key is
// an error, since a misspelt key silently ignored is a setting silently
// lost.
func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "must be a mapping, got %s", d.kindName(n))
		return
	}
	fields := yamlFields(v.Type())
	d.pairs(n, path, func(key, val *yaml.Node) {
		p := joinPath(path, key.Value)
		i, ok := fields[key.Value]
		if !ok {
			d.errorf(key.Line, p, "unknown key%s", suggest(key.Value, fields))
			return
		}
		d.pos[p] = key.Line
		// A key written again (beside a merge key that gave it) is what
		// it was written with last, a value or none.
		if isNull(resolveAlias(val)) {
			d.nulls[p] = true
		} else {
			delete(d.nulls, p)
		}
		if s, _ := FieldSecrecy(v.Type().Field(i)); s != NotSecret {
			d.secret++
			defer func() { d.secret-- }()
		}
		d.decode(val, v.Field(i), p)
	})
}

// mapping decodes a mapping into a map[string]T, reusing an existing
// element when a merge key and an explicit key name the same entry.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n.Line, path, "must be a mapping, got %s", d.kindName(n))
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	elemType := v.Type().Elem()
	d.pairs(n, path, func(key, val *yaml.Node) {
		p := joinPath(path, key.Value)
		if _, seen := d.pos[p]; !seen {
			d.keys[path] = append(d.keys[path], key.Value)
		}
		d.pos[p] = key.Line
		k := reflect.ValueOf(key.Value)
		elem := reflect.New(elemType).Elem()
		if old := v.MapIndex(k); old.IsValid() {
			elem.Set(old)
		} else if elemType.Kind() == reflect.Pointer {
			elem.Set(newValue(elemType.Elem()))
		}
		d.decode(val, elem, p)
		v.SetMapIndex(k, elem)
	})
}

// yamlFields maps yaml key names to struct field indexes.
func yamlFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		out[name] = i
	}
	return out
}
