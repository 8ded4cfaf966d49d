package compress

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// The content codings this package produces, as they appear in
// Accept-Encoding and Content-Encoding.
const (
	Zstd   = "zstd"
	Brotli = "br"
	Gzip   = "gzip"
)

// DefaultMinSize is the MinSize used when Options.MinSize is 0; doc.go
// says why, as it does for the other defaults.
const DefaultMinSize = 1024

const (
	defaultGzipLevel   = 5
	defaultBrotliLevel = 4
	defaultZstdLevel   = zstd.SpeedDefault

	// zstdWindow bounds the history a pooled zstd encoder keeps, so an
	// idle encoder in the pool holds about 1 MiB rather than the library's
	// 8 MiB default; an answer smaller than the window loses nothing.
	zstdWindow = 1 << 20
	// brotliLGWin is the same bound for brotli (2^20 bytes).
	brotliLGWin = 20
	// brotliRetainLimit is the most a brotli encoder may have compressed
	// in one answer and still go back to the pool: its ring buffer,
	// command and output buffers grow with the answer (about 6.5 MiB
	// after 1 MiB at quality 4, against 0.8 MiB after 16 KiB) and are
	// never trimmed.
	brotliRetainLimit = 256 << 10
)

// DefaultEncodings is the preference order used when Options.Encodings is
// empty.
func DefaultEncodings() []string { return []string{Zstd, Gzip, Brotli} }

// DefaultTypes is the content-type list used when Options.Types is empty.
func DefaultTypes() []string {
	return []string{
		"text/*",
		"application/json",
		"application/*+json",
		"application/x-ndjson",
		"application/javascript",
		"application/x-javascript",
		"application/ecmascript",
		"application/xml",
		"application/*+xml",
		"application/yaml",
		"application/x-yaml",
		"application/wasm",
		"application/vnd.ms-fontobject",
		"application/x-font-ttf",
		"application/x-font-opentype",
		"font/ttf",
		"font/otf",
		"font/collection",
		"image/svg+xml",
		"image/x-icon",
		"image/vnd.microsoft.icon",
		"image/bmp",
	}
}

// ErrInvalidOptions is wrapped by every error New returns.
var ErrInvalidOptions = errors.New("invalid compression options")

// Options configures a Compressor. The zero value is the default
// configuration.
type Options struct {
	// Encodings lists the content codings to offer, most preferred
	// first, among "zstd", "br" and "gzip". The order breaks ties between
	// codings a client accepts with equal q-values. Empty means
	// DefaultEncodings: zstd, gzip, br.
	Encodings []string
	// Level is the compression level on a 1 (fastest) to 9 (smallest)
	// scale, used as gzip's level, brotli's quality and zstd's level
	// (which the zstd encoder rounds to its fastest, default, better or
	// best speed). 0 means each encoder's on-the-fly default: gzip 5,
	// brotli 4, zstd default (about zstd level 3).
	Level int
	// MinSize is the smallest known Content-Length that is compressed.
	// Answers of unknown length are always compressed. 0 means
	// DefaultMinSize (1024); a negative value means no minimum.
	MinSize int64
	// Types lists the content types to compress: an exact media type
	// ("text/html"), a whole top-level type ("text/*") or a structured
	// syntax suffix ("application/*+json"). Parameters such as charset are
	// ignored; matching is case-insensitive. Empty means DefaultTypes.
	Types []string
}

// Compressor decides whether and how to compress answers, and hands out
// pooled encoders. It is safe for concurrent use.
type Compressor struct {
	encodings []string // preference order, canonical names
	minSize   int64
	exact     map[string]struct{}
	prefixes  []string // "text/" from "text/*"
	suffixes  []suffixType
	pools     [numCodings]*sync.Pool
	// built counts encoders made by the pools, so tests can tell reuse
	// from a new encoder per answer.
	built atomic.Int64
}

type suffixType struct{ prefix, suffix string } // "application/", "+json"

type coding int

const (
	codingZstd coding = iota
	codingBrotli
	codingGzip
	numCodings
)

func codingOf(name string) (coding, bool) {
	switch {
	case strings.EqualFold(name, Zstd):
		return codingZstd, true
	case strings.EqualFold(name, Brotli):
		return codingBrotli, true
	case strings.EqualFold(name, Gzip), strings.EqualFold(name, "x-gzip"):
		// RFC 9110 8.4.1.3: x-gzip is gzip.
		return codingGzip, true
	}
	return 0, false
}

var codingNames = [numCodings]string{codingZstd: Zstd, codingBrotli: Brotli, codingGzip: Gzip}

// New validates o and builds a Compressor.
func New(o Options) (*Compressor, error) {
	c := &Compressor{minSize: o.MinSize, exact: map[string]struct{}{}}
	switch {
	case c.minSize == 0:
		c.minSize = DefaultMinSize
	case c.minSize < 0:
		c.minSize = 0
	}
	if o.Level < 0 || o.Level > 9 {
		return nil, fmt.Errorf("%w: level %d is outside 0 to 9", ErrInvalidOptions, o.Level)
	}

	encs := o.Encodings
	if len(encs) == 0 {
		encs = DefaultEncodings()
	}
	for _, e := range encs {
		cd, ok := codingOf(strings.TrimSpace(e))
		if !ok || strings.EqualFold(strings.TrimSpace(e), "x-gzip") {
			return nil, fmt.Errorf("%w: encoding %q is not one of zstd, br, gzip", ErrInvalidOptions, e)
		}
		if c.pools[cd] != nil {
			return nil, fmt.Errorf("%w: encoding %q is listed twice", ErrInvalidOptions, e)
		}
		pool, err := newPool(cd, o.Level, &c.built)
		if err != nil {
			return nil, fmt.Errorf("%w: %s level %d: %w", ErrInvalidOptions, codingNames[cd], o.Level, err)
		}
		c.pools[cd] = pool
		c.encodings = append(c.encodings, codingNames[cd])
	}

	types := o.Types
	if len(types) == 0 {
		types = DefaultTypes()
	}
	for _, t := range types {
		if err := c.addType(t); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *Compressor) addType(t string) error {
	lt := strings.ToLower(strings.TrimSpace(t))
	typ, sub, ok := strings.Cut(lt, "/")
	if !ok || typ == "" || sub == "" || typ == "*" || strings.ContainsAny(lt, " \t;,") || strings.Count(lt, "/") != 1 {
		return fmt.Errorf("%w: content type %q is not type/subtype, type/* or type/*+suffix", ErrInvalidOptions, t)
	}
	switch {
	case sub == "*":
		c.prefixes = append(c.prefixes, typ+"/")
	case strings.HasPrefix(sub, "*+") && len(sub) > 2 && !strings.Contains(sub[2:], "*"):
		c.suffixes = append(c.suffixes, suffixType{prefix: typ + "/", suffix: sub[1:]})
	case !strings.Contains(sub, "*"):
		c.exact[lt] = struct{}{}
	default:
		return fmt.Errorf("%w: content type %q is not type/subtype, type/* or type/*+suffix", ErrInvalidOptions, t)
	}
	return nil
}

// Encodings returns the offered codings in preference order.
func (c *Compressor) Encodings() []string { return append([]string(nil), c.encodings...) }

// MinSize returns the effective minimum Content-Length (0: no minimum).
func (c *Compressor) MinSize() int64 { return c.minSize }

// typeMatches reports whether a Content-Type field value is in Types.
func (c *Compressor) typeMatches(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	if mt == "" {
		return false
	}
	if !isLowerASCII(mt) {
		mt = strings.ToLower(mt)
	}
	if _, ok := c.exact[mt]; ok {
		return true
	}
	for _, p := range c.prefixes {
		if strings.HasPrefix(mt, p) && len(mt) > len(p) {
			return true
		}
	}
	for _, s := range c.suffixes {
		if strings.HasPrefix(mt, s.prefix) && strings.HasSuffix(mt, s.suffix) && len(mt) > len(s.prefix)+len(s.suffix) {
			return true
		}
	}
	return false
}

func isLowerASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return false
		}
	}
	return true
}

// encoder is what the three libraries' stream writers have in common.
type encoder interface {
	Write(p []byte) (int, error)
	Flush() error
	Close() error
	Reset(w io.Writer)
}

// newPool returns the pool of Writers for one coding at one level, after
// building one encoder so that an invalid level fails New, not a request.
func newPool(cd coding, level int, built *atomic.Int64) (*sync.Pool, error) {
	mk, err := encoderFactory(cd, level)
	if err != nil {
		return nil, err
	}
	if _, err := mk(); err != nil {
		return nil, err
	}
	p := &sync.Pool{}
	p.New = func() any {
		built.Add(1)
		e, err := mk()
		if err != nil {
			// Unreachable: the same settings succeeded in New.
			panic(fmt.Sprintf("compress: building a %s encoder: %v", codingNames[cd], err))
		}
		w := &Writer{pool: p, enc: e, name: codingNames[cd]}
		if cd == codingBrotli {
			w.retainLimit = brotliRetainLimit
		}
		e.Reset(&w.out)
		return w
	}
	return p, nil
}

func encoderFactory(cd coding, level int) (func() (encoder, error), error) {
	switch cd {
	case codingGzip:
		l := defaultGzipLevel
		if level != 0 {
			l = level
		}
		return func() (encoder, error) {
			g, err := gzip.NewWriterLevel(nil, l)
			if err != nil {
				return nil, err
			}
			return g, nil
		}, nil
	case codingBrotli:
		q := defaultBrotliLevel
		if level != 0 {
			q = level
		}
		return func() (encoder, error) {
			return brotli.NewWriterOptions(nil, brotli.WriterOptions{Quality: q, LGWin: brotliLGWin}), nil
		}, nil
	case codingZstd:
		l := defaultZstdLevel
		if level != 0 {
			l = zstd.EncoderLevelFromZstd(level)
		}
		return func() (encoder, error) {
			z, err := zstd.NewWriter(nil,
				// One goroutine-free encoder per answer: the request is
				// already the unit of parallelism.
				zstd.WithEncoderConcurrency(1),
				zstd.WithEncoderLevel(l),
				zstd.WithWindowSize(zstdWindow),
				zstd.WithLowerEncoderMem(true),
				// An empty answer is still a valid zstd stream.
				zstd.WithZeroFrames(true),
			)
			if err != nil {
				return nil, err
			}
			return z, nil
		}, nil
	}
	return nil, fmt.Errorf("unknown coding %d", cd)
}
