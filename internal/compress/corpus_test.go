package compress

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// textBody returns n bytes of deterministic HTML-like text, varied enough
// that the encoders work as on a real page rather than on one repeated
// word.
func textBody(n int, seed uint64) []byte {
	words := []string{"gateway", "upstream", "instance", "request", "answer", "the", "a", "of", "to",
		"supervisor", "listener", "health", "probe", "restart", "pool", "connection", "header",
		"compress", "encoding", "client", "server", "cache", "status", "timeout", "retry", "route"}
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for row := 0; b.Len() < n; row++ {
		fmt.Fprintf(&b, "<tr class=\"row-%d\"><td id=\"c%d\">", row%7, r.IntN(100000))
		for i := 0; i < 4+r.IntN(12); i++ {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d</td><td>%.3f</td></tr>\n", r.IntN(1<<20), r.Float64()*1000)
	}
	return b.Bytes()[:n]
}

// binaryBody returns n bytes of incompressible data.
func binaryBody(n int) []byte {
	r := rand.New(rand.NewPCG(7, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

type namedBody struct {
	name string
	data []byte
}

func roundTripBodies() []namedBody {
	return []namedBody{
		{"empty", nil},
		{"1B", []byte("x")},
		{"1KiB-text", textBody(1<<10, 1)},
		{"1MiB-text", textBody(1<<20, 2)},
		{"64KiB-binary", binaryBody(64 << 10)},
	}
}

// decode decodes a whole stream of the given coding with the Go decoders.
func decode(t testing.TB, enc string, compressed []byte) []byte {
	t.Helper()
	r, closeFn, err := newDecoder(enc, bytes.NewReader(compressed))
	if err != nil {
		t.Fatalf("open %s decoder: %v", enc, err)
	}
	defer closeFn()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode %s: %v", enc, err)
	}
	return out
}

// newDecoder returns a streaming decoder for enc and the function that
// releases it (zstd's decoder owns goroutines until closed).
func newDecoder(enc string, src io.Reader) (io.Reader, func(), error) {
	switch enc {
	case Gzip:
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() { zr.Close() }, nil
	case Brotli:
		return brotli.NewReader(src), func() {}, nil
	case Zstd:
		zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return nil, nil, fmt.Errorf("no decoder for %q", enc)
}

// compressChunks compresses data with a pooled Writer, writing chunk bytes
// at a time and flushing after every flushEvery writes (0: never).
func compressChunks(t testing.TB, c *Compressor, enc string, data []byte, chunk, flushEvery int) []byte {
	t.Helper()
	var out bytes.Buffer
	w := c.NewWriter(enc, &out)
	defer w.Release()
	if chunk <= 0 {
		chunk = len(data) + 1
	}
	for i, n := 0, 0; i < len(data); n++ {
		end := min(i+chunk, len(data))
		if _, err := w.Write(data[i:end]); err != nil {
			t.Fatalf("write: %v", err)
		}
		i = end
		if flushEvery > 0 && n%flushEvery == 0 {
			if err := w.Flush(); err != nil {
				t.Fatalf("flush: %v", err)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	return out.Bytes()
}

func mustNew(t testing.TB, o Options) *Compressor {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatalf("New(%+v): %v", o, err)
	}
	return c
}
