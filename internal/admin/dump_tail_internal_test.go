package admin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A dump's access.log is the file's last lines even when an earlier line
// is longer than a line may be (a huge request head, garbage a crash
// left): that line is left out, the lines after it are not.
func TestTailFileSkipsLongLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	content := "one\n" + strings.Repeat("x", 2<<20) + "\ntwo\nthree\n"
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := string(tailFile(path, 2)), "two\nthree\n"; got != want {
		t.Errorf("tailFile = %.40q, want %q", got, want)
	}
}
