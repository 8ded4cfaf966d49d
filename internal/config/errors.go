package config

import (
	"sort"
	"strconv"
	"strings"
)

// FieldError is one problem in a config, located by file, line and key path.
type FieldError struct {
	File string // the config file; "" for a config not read from a file
	Line int    // 1-based; 0 when unknown
	Path string // dotted key path, e.g. apps.web.health.interval
	Msg  string
}

// Error is "FILE:LINE: PATH: MSG". Parts that are unknown (no file, no line,
// no path, as for a YAML syntax error or a config built from a command line)
// are left out rather than printed empty.
func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one config. Load, Parse and Validate
// return it (as error) when it is not empty; use errors.As to get it.
type Errors []*FieldError

// Error lists one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As see each problem.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sorted orders problems as a reader meets them in the file. The sort is
// stable so problems on one line keep the order they were found in.
func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
	return es
}

// err returns es as an error, or nil when there is no problem; a nil Errors
// must not become a non-nil error interface.
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es.sorted()
}

// positions maps a key path to the line it was written on, so that semantic
// checks made after decoding can still name a line.
type positions map[string]int

// line returns the line of path or, for a key that was never written (a
// missing key), of the nearest ancestor that was.
func (p positions) line(path string) int {
	for {
		if l, ok := p[path]; ok {
			return l
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// parentPath strips the last ".key" or "[i]" from a path.
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// joinPath appends a key to a path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends a sequence index to a path.
func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}
