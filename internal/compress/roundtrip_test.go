package compress

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// writePatterns are the ways a proxy hands a body to the Writer: in one
// piece, in small and odd pieces with a flush after each, and in pieces
// with a flush now and then.
var writePatterns = []struct {
	name              string
	chunk, flushEvery int
}{
	{"one write", 0, 0},
	{"7-byte writes flushed each", 7, 1},
	{"4KiB writes flushed every 3", 4 << 10, 3},
	{"32KiB writes", 32 << 10, 0},
}

func TestRoundTripThroughGoDecoders(t *testing.T) {
	c := mustNew(t, Options{})
	for _, enc := range c.Encodings() {
		for _, b := range roundTripBodies() {
			for _, p := range writePatterns {
				if p.chunk == 7 && len(b.data) > 64<<10 {
					continue // 150k flushes of a 1 MiB body prove nothing more than 10k
				}
				t.Run(enc+"/"+b.name+"/"+p.name, func(t *testing.T) {
					compressed := compressChunks(t, c, enc, b.data, p.chunk, p.flushEvery)
					if got := decode(t, enc, compressed); !bytes.Equal(got, b.data) {
						t.Fatalf("decoded %d bytes, want the %d written", len(got), len(b.data))
					}
				})
			}
		}
	}
}

func TestReleaseWithoutCloseAbandonsStream(t *testing.T) {
	c := mustNew(t, Options{})
	body := textBody(50<<10, 3)
	for _, enc := range c.Encodings() {
		t.Run(enc, func(t *testing.T) {
			var abandoned bytes.Buffer
			w := c.NewWriter(enc, &abandoned)
			if _, err := w.Write(body[:20<<10]); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(body[20<<10:]); err != nil {
				t.Fatal(err)
			}
			sent := abandoned.Len()
			w.Release()
			// The pooled encoder is handed out again: nothing of the
			// abandoned stream may reach either answer.
			got := decode(t, enc, compressChunks(t, c, enc, body, 1000, 5))
			if !bytes.Equal(got, body) {
				t.Fatalf("answer after an abandoned one decoded to %d bytes, want %d", len(got), len(body))
			}
			if abandoned.Len() != sent {
				t.Fatalf("abandoned answer grew from %d to %d bytes after Release", sent, abandoned.Len())
			}
		})
	}
}

func TestWriterAfterCloseReportsErrClosed(t *testing.T) {
	c := mustNew(t, Options{})
	w := c.NewWriter(Gzip, &bytes.Buffer{})
	defer w.Release()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err != ErrClosed {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := w.Flush(); err != ErrClosed {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(); err != ErrClosed {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}

func TestWarmWriterAllocatesNoEncoder(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop entries at random")
	}
	c := mustNew(t, Options{})
	body := textBody(16<<10, 4)
	for _, enc := range c.Encodings() {
		t.Run(enc, func(t *testing.T) {
			var sink bytes.Buffer
			answer := func() {
				sink.Reset()
				w := c.NewWriter(enc, &sink)
				w.Write(body[:8<<10])
				w.Flush()
				w.Write(body[8<<10:])
				w.Close()
				w.Release()
			}
			answer()
			sink.Grow(64 << 10)
			// A collection empties pools, which is their right; with it
			// off, what remains is the pool's per-P cache: the goroutine
			// may move to another P once or twice and find none there.
			defer debug.SetGCPercent(debug.SetGCPercent(-1))
			const runs = 200
			built := c.built.Load()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				answer()
			}
			runtime.ReadMemStats(&after)
			if n := c.built.Load() - built; n > int64(runtime.GOMAXPROCS(0)) {
				t.Errorf("%d warm %s answers built %d encoders, want at most one per P (%d)", runs, enc, n, runtime.GOMAXPROCS(0))
			}
			// zstd allocates a few dozen bytes when it flushes; nothing
			// else is allocated per answer.
			if m := (after.Mallocs - before.Mallocs) / runs; m > 2 {
				t.Errorf("a warm %s answer makes %d allocations, want at most 2", enc, m)
			}
		})
	}
}

// curlDecoders reports which codings the installed curl decodes, or skips
// the test: always under -short (curl is another program), and when curl
// is missing unless GATEHOUSE_CURL_DECODERS=1 asks for a failure instead.
func curlDecoders(t *testing.T) map[string]bool {
	t.Helper()
	testutil.SkipInShort(t)
	out, err := exec.Command("curl", "--version").Output()
	if err != nil {
		if os.Getenv("GATEHOUSE_CURL_DECODERS") == "1" {
			t.Fatalf("GATEHOUSE_CURL_DECODERS=1 but curl --version failed: %v", err)
		}
		t.Skipf("curl --version: %v", err)
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if f, ok := strings.CutPrefix(line, "Features:"); ok {
			for _, feat := range strings.Fields(f) {
				switch strings.ToLower(feat) {
				case "libz":
					have[Gzip] = true
				case "brotli":
					have[Brotli] = true
				case "zstd":
					have[Zstd] = true
				}
			}
		}
	}
	return have
}

func TestRoundTripThroughCurl(t *testing.T) {
	have := curlDecoders(t)
	t.Parallel()
	c := mustNew(t, Options{})
	bodies := map[string][]byte{}
	for _, b := range roundTripBodies() {
		bodies[b.name] = b.data
	}
	var (
		mu         sync.Mutex
		negotiated []string
	)
	// GET /ENC/BODY/CHUNK/FLUSHEVERY answers BODY compressed with ENC,
	// whatever the request accepts, so each coding meets curl's decoder.
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if len(parts) != 4 {
			http.Error(rw, "bad path", http.StatusBadRequest)
			return
		}
		enc, body := parts[0], bodies[parts[1]]
		chunk, _ := strconv.Atoi(parts[2])
		flushEvery, _ := strconv.Atoi(parts[3])
		mu.Lock()
		negotiated = append(negotiated, c.Negotiate(r.Header["Accept-Encoding"]))
		mu.Unlock()
		rw.Header().Set("Content-Type", "text/plain")
		Prepare(rw.Header(), enc)
		w := c.NewWriter(enc, rw)
		defer w.Release()
		if chunk <= 0 {
			chunk = len(body) + 1
		}
		for i, n := 0, 0; i < len(body); n++ {
			end := min(i+chunk, len(body))
			if _, err := w.Write(body[i:end]); err != nil {
				return
			}
			i = end
			if flushEvery > 0 && n%flushEvery == 0 {
				if err := w.Flush(); err != nil {
					return
				}
			}
		}
		w.Close()
	}))
	defer srv.Close()

	dir := t.TempDir()
	for _, enc := range c.Encodings() {
		if !have[enc] {
			t.Logf("curl lacks the %s decoder (curl --version Features); %s is not checked against curl", enc, enc)
			continue
		}
		for _, b := range roundTripBodies() {
			for _, p := range writePatterns {
				if p.chunk == 7 && len(b.data) > 64<<10 {
					continue
				}
				t.Run(enc+"/"+b.name+"/"+p.name, func(t *testing.T) {
					out := filepath.Join(dir, enc+"-"+b.name+"-"+strconv.Itoa(p.chunk))
					url := fmt.Sprintf("%s/%s/%s/%d/%d", srv.URL, enc, b.name, p.chunk, p.flushEvery)
					ctx, cancel := context.WithCancel(context.Background())
					defer cancel()
					cmd := exec.CommandContext(ctx, "curl", "--compressed", "--silent", "--show-error", "--fail", "--output", out, url)
					if msg, err := cmd.CombinedOutput(); err != nil {
						t.Fatalf("curl %s: %v\n%s", url, err, msg)
					}
					got, err := os.ReadFile(out)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, b.data) {
						t.Fatalf("curl decoded %d bytes, want the %d written", len(got), len(b.data))
					}
				})
			}
		}
	}

	// curl --compressed offers every decoder it has; the best one offered
	// by both sides is the first of ours that curl has.
	want := ""
	for _, enc := range c.Encodings() {
		if have[enc] {
			want = enc
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, got := range negotiated {
		if got != want {
			t.Fatalf("Negotiate on curl's Accept-Encoding = %q, want %q", got, want)
		}
	}
}

func TestLargeBrotliAnswerDoesNotReturnEncoderToPool(t *testing.T) {
	c := mustNew(t, Options{})
	big := c.NewWriter(Brotli, io.Discard)
	body := textBody(brotliRetainLimit+1, 6)
	if _, err := big.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := big.Close(); err != nil {
		t.Fatal(err)
	}
	big.Release()
	next := c.NewWriter(Brotli, io.Discard)
	defer next.Release()
	if next == big {
		t.Fatalf("a brotli Writer that took %d bytes came back from the pool", len(body))
	}
}
