package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// `logs --lines 0` (all the lines kept) reads a whole instance log file,
// up to its rotation size (100 MB by default): tailFile must cost what
// the file does, not read it again for every 64 KiB chunk it prepends,
// which made a 100 MB file cost ~80 GB of copying.
func TestTailFileAllLinesLinear(t *testing.T) {
	const size = 16 << 20
	line := append(bytes.Repeat([]byte("x"), 99), '\n')
	b := bytes.Repeat(line, size/len(line))
	path := filepath.Join(t.TempDir(), "web-1.log")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	lines, end, err := tailFile(fd, 0)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != size/len(line) || end != int64(len(b)) {
		t.Fatalf("tailFile = %d lines ending at %d, want %d ending at %d", len(lines), end, size/len(line), len(b))
	}
	// The file itself, its lines' slice headers and slack: a few times the
	// file, where a copy per chunk is ~128 times it.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*size {
		t.Errorf("tailFile of a %d MiB file allocated %d MiB, want at most %d", size>>20, alloc>>20, 8*size>>20)
	}
}
