package compress

import (
	"bytes"
	"testing"
)

// FuzzRoundTrip writes arbitrary data in arbitrary chunks, flushing now
// and then, through each coding and decodes it back with the Go decoders.
// The Compressor (and so the pooled encoders) outlives the inputs, so
// state left behind by one input would show on a later one.
func FuzzRoundTrip(f *testing.F) {
	c := mustNew(f, Options{})
	f.Add([]byte(""), uint16(0), uint8(0))
	f.Add([]byte("x"), uint16(1), uint8(1))
	f.Add(textBody(3000, 9), uint16(100), uint8(2))
	f.Add(binaryBody(5000), uint16(4096), uint8(0))
	f.Add(bytes.Repeat([]byte("data: tick\n\n"), 200), uint16(12), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16, flushEvery uint8) {
		for _, enc := range c.Encodings() {
			got := decode(t, enc, compressChunks(t, c, enc, data, int(chunk), int(flushEvery)))
			if !bytes.Equal(got, data) {
				t.Fatalf("%s: decoded %d bytes, want the %d written", enc, len(got), len(data))
			}
		}
	})
}
