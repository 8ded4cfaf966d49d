package compress

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchAnswer compresses one answer of body per iteration into io.Discard
// through a warm pool, as the gateway does per request.
func benchAnswer(b *testing.B, o Options, enc string, body []byte) {
	c := mustNew(b, o)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var out countingWriter
	cpu0 := processCPU(b)
	for b.Loop() {
		w := c.NewWriter(enc, &out)
		if _, err := w.Write(body); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		w.Release()
	}
	// CPU time rather than wall time is what an answer costs the
	// machine, and it stays meaningful when other work shares the cores.
	b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(out.n)/float64(b.N)/float64(len(body)), "ratio")
}

// processCPU returns the user and system CPU time the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countingWriter counts the compressed bytes for the ratio metric.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countingWriter)(nil)

// pageBody returns n bytes of a real HTML page, the Go specification that
// ships with the toolchain, so the ratios are those of markup and prose
// (brotli's dictionary and zstd's and gzip's matchers behave differently
// on generated text). Without it the generated corpus stands in.
func pageBody(b *testing.B, n int) []byte {
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	var page []byte
	if err == nil {
		page, err = os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "doc", "go_spec.html"))
	}
	if err != nil || len(page) < 20000+n {
		b.Logf("no go_spec.html in GOROOT (%v); benchmarking generated text", err)
		return textBody(n, uint64(n))
	}
	// Past the head and style sheet, into the prose.
	return page[20000 : 20000+n]
}

func BenchmarkGzip1KiB(b *testing.B)  { benchAnswer(b, Options{}, Gzip, pageBody(b, 1<<10)) }
func BenchmarkGzip64KiB(b *testing.B) { benchAnswer(b, Options{}, Gzip, pageBody(b, 64<<10)) }
func BenchmarkBr1KiB(b *testing.B)    { benchAnswer(b, Options{}, Brotli, pageBody(b, 1<<10)) }
func BenchmarkBr64KiB(b *testing.B)   { benchAnswer(b, Options{}, Brotli, pageBody(b, 64<<10)) }
func BenchmarkZstd1KiB(b *testing.B)  { benchAnswer(b, Options{}, Zstd, pageBody(b, 1<<10)) }
func BenchmarkZstd64KiB(b *testing.B) { benchAnswer(b, Options{}, Zstd, pageBody(b, 64<<10)) }

// BenchmarkLevels compares levels on the 1 to 9 scale for each coding;
// gzip level 1 is nginx's default gzip_comp_level, level 0 the package
// default.
func BenchmarkLevels(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		body := pageBody(b, size)
		for _, enc := range []string{Gzip, Brotli, Zstd} {
			for _, level := range []int{1, 0, 6, 9} {
				b.Run(fmt.Sprintf("%s/%dKiB/level=%d", enc, size>>10, level), func(b *testing.B) {
					benchAnswer(b, Options{Level: level}, enc, body)
				})
			}
		}
	}
}
