package config

import (
	"path/filepath"
	"testing"
)

// Every example config the repository ships is valid.
func TestExamplesAreValid(t *testing.T) {
	files, err := filepath.Glob("../../examples/*/gatehouse.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v, %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(filepath.Dir(f)), func(t *testing.T) {
			if _, err := Load(f); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
}
