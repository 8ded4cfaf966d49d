// Command gen writes docs/config.md and schema/gatehouse.schema.json from
// the config types and their doc comments (see package configref). It is
// run by go generate from internal/configref, and finds the repository
// root as the directory of go.mod above it.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gatehouse/gatehouse/internal/configref"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "configref/gen: "+err.Error())
		os.Exit(1)
	}
}

func run() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	files, err := configref.Generate(os.DirFS(root))
	if err != nil {
		return err
	}
	for name, data := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// moduleRoot is the nearest directory at or above the working directory
// that holds go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
}
