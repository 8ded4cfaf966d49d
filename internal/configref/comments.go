package configref

import (
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"io/fs"
	"strings"
)

// comments are the doc comments of internal/config's struct types and
// of their fields, by Go name, as the source says them.
type comments struct {
	types  map[string]string
	fields map[string]map[string]string
}

// readComments parses the Go files of internal/config in fsys (its
// tests left out) for the doc comments of its types and fields. It reads
// the source rather than anything compiled, since comments do not survive
// compilation; that is why the outputs are generated and committed.
func readComments(fsys fs.FS) (*comments, error) {
	names, err := fs.Glob(fsys, "*.go")
	if err != nil {
		return nil, fmt.Errorf("list config sources: %w", err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read config source: %w", err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parse config source: %w", err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no Go files in the config source")
	}
	pkg, err := doc.NewFromFiles(fset, files, "github.com/gatehouse/gatehouse/internal/config")
	if err != nil {
		return nil, fmt.Errorf("read config doc comments: %w", err)
	}
	c := &comments{types: map[string]string{}, fields: map[string]map[string]string{}}
	for _, t := range pkg.Types {
		c.types[t.Name] = t.Doc
		for _, spec := range t.Decl.Specs {
			ts, ok := spec.(*ast.TypeSpec)
			if !ok || ts.Name.Name != t.Name {
				continue
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			fields := map[string]string{}
			for _, f := range st.Fields.List {
				text := f.Doc.Text()
				if text == "" {
					text = f.Comment.Text()
				}
				for _, n := range f.Names {
					fields[n.Name] = text
				}
			}
			c.fields[t.Name] = fields
		}
	}
	return c, nil
}

// paragraphs turns a doc comment's text into paragraphs of one line each.
func paragraphs(text string) []string {
	var out []string
	for _, p := range strings.Split(strings.TrimSpace(text), "\n\n") {
		if p = strings.Join(strings.Fields(p), " "); p != "" {
			out = append(out, p)
		}
	}
	return out
}
