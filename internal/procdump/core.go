package procdump

import (
	"context"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"
)

// coreLevel is gzip's fastest level: a core is hundreds of megabytes of
// mostly zero pages and pointers, and the time it takes to compress is the
// dump's; the stronger levels gain little on it.
const coreLevel = gzip.BestSpeed

// takeCore has gdb's gcore write the core beside the store, then
// compresses it into w. gcore stops the process for its whole run (attach
// to detach) and leaves it running.
func takeCore(ctx context.Context, t *target, w io.Writer, opt Options, res *Result) error {
	res.Tool = "gcore"
	gcore, err := opt.lookPath("gcore")
	if err != nil {
		return &MissingToolError{Tool: "gcore", Runtime: res.Runtime, Install: "install gdb, which ships gcore (apt-get install gdb)"}
	}
	if res.Exe, err = exePath(t.pid); err != nil {
		return err
	}
	res.BuildID = gnuBuildID(procPath(t.pid, "exe"))
	if err := roomForCore(t.pid, opt.tempDir()); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(opt.tempDir(), "procdump-core-")
	if err != nil {
		return fmt.Errorf("core directory: %w", err)
	}
	defer os.RemoveAll(dir)
	prefix := filepath.Join(dir, "core")
	run, err := runTool(t.live, t, opt, nil, gcore, "-o", prefix, strconv.Itoa(t.pid))
	// An upper bound: gcore's run includes gdb's start and symbol loading
	// before the attach, and its exit after the detach.
	res.Paused = run.elapsed
	if err != nil {
		return err
	}
	return compressCore(ctx, prefix+"."+strconv.Itoa(t.pid), w)
}

// compressCore gzips the core file into w. The file is unlinked once open,
// so that nothing is left behind whatever happens to the copy.
func compressCore(ctx context.Context, path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("core file: %w", err)
	}
	defer f.Close()
	_ = os.Remove(path)
	zw, err := gzip.NewWriterLevel(w, coreLevel)
	if err != nil {
		return err
	}
	if err := copyCtx(ctx, zw, f); err != nil {
		return fmt.Errorf("compressing the core: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("compressing the core: %w", err)
	}
	return nil
}

// gnuBuildID reads the NT_GNU_BUILD_ID note of an ELF file, the id that
// debuginfod and gdb's debug-file-directory find symbols by; "" if none.
func gnuBuildID(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := f.Section(".note.gnu.build-id")
	if s == nil {
		return ""
	}
	data, err := s.Data()
	if err != nil {
		return ""
	}
	return parseBuildIDNote(f.ByteOrder, data)
}

// parseBuildIDNote reads one ELF note: namesz, descsz, type, then the name
// and the descriptor, each padded to 4 bytes.
func parseBuildIDNote(order interface{ Uint32([]byte) uint32 }, b []byte) string {
	const ntGNUBuildID = 3
	if len(b) < 12 {
		return ""
	}
	namesz, descsz, typ := order.Uint32(b[0:4]), order.Uint32(b[4:8]), order.Uint32(b[8:12])
	nameEnd := 12 + int(namesz)
	descStart := 12 + int((namesz+3)&^3)
	if typ != ntGNUBuildID || nameEnd > len(b) || string(b[12:nameEnd]) != "GNU\x00" || descStart+int(descsz) > len(b) {
		return ""
	}
	return hex.EncodeToString(b[descStart : descStart+int(descsz)])
}

// coreMargin is the free space a core leaves beside it: the logs on the
// same filesystem go on being written while it is.
const coreMargin = 64 << 20

// NoSpaceError is a core that would not fit: gcore writes it whole,
// uncompressed, before it is compressed.
type NoSpaceError struct {
	Dir        string
	Need, Free uint64
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("not enough free space in %s for the core: it is written uncompressed first, about %d MiB (the process's readable memory), and %d MiB are free",
		e.Dir, e.Need>>20, e.Free>>20)
}

// roomForCore checks that dir's filesystem holds a core of pid with
// coreMargin to spare; a core that filled it would stop the logs beside.
func roomForCore(pid int, dir string) error {
	need, err := readableMemory(pid)
	if err != nil {
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return fmt.Errorf("free space of %s: %w", dir, err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free < need+coreMargin {
		return &NoSpaceError{Dir: dir, Need: need, Free: free}
	}
	return nil
}

// readableMemory is the size of pid's readable mappings, which is what
// gcore copies: an upper bound of the core's size.
func readableMemory(pid int) (uint64, error) {
	b, err := os.ReadFile(procPath(pid, "maps"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("pid %d: %w", pid, ErrExited)
	}
	if err != nil {
		return 0, fmt.Errorf("memory map of pid %d: %w", pid, err)
	}
	var total uint64
	for line := range strings.Lines(string(b)) {
		rng, rest, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(rest, "r") {
			continue
		}
		lo, hi, ok := strings.Cut(rng, "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(lo, 16, 64)
		z, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 == nil && err2 == nil && z > a {
			total += z - a
		}
	}
	return total, nil
}
