package testutil

import (
	"flag"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// update rewrites golden files: go test ./internal/PKG/ -update
var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from the output")

// Golden compares got with the golden file at path, or rewrites the file
// when the tests run with -update.
func Golden(t testing.TB, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("output differs from %s (-want +got):\n%s", path, diff)
	}
}
