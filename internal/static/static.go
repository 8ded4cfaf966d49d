package static

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Options configure one static route.
type Options struct {
	// Root is the absolute directory served.
	Root string
	// Index names the files that answer for a directory, in order;
	// empty means ["index.html"].
	Index []string
	// TryFiles are nginx's try_files: "$path" is the request path; each
	// entry but the last must exist, the last is the fallback file or
	// "=CODE". Empty means the request path alone, with a directory
	// answered by its index.
	TryFiles []string
	// CacheControl is the Cache-Control value on 2xx and 304 answers;
	// empty sets none.
	CacheControl string
	// Precompressed names the sibling encodings looked for ("br", "zstd",
	// "gzip": NAME.br, NAME.zst, NAME.gz), in preference order.
	Precompressed []string
	// AllowSymlinks follows symlinks that leave Root; without it they are
	// refused as not found.
	AllowSymlinks bool
	// CacheFileMax is the largest file kept in memory, in bytes: 0 means
	// 64 KiB, a negative value keeps no file in memory.
	CacheFileMax int64
	// CacheTotal bounds the memory the kept files take, in bytes: 0 means
	// 32 MiB.
	CacheTotal int64
	// Now is the clock that says when a kept file or the root is due to
	// be checked again; nil means time.Now.
	Now func() time.Time
}

// Result says what Serve answered, for the access log.
type Result struct {
	// Status is the status code written.
	Status int
	// File is the file whose bytes (or headers) were sent, relative to the
	// root: the sibling (app.js.br) when a precompressed one was; "" when
	// no file was.
	File string
	// Encoding is "br", "zstd" or "gzip" when a precompressed sibling was
	// sent.
	Encoding string
}

// ErrInvalidOptions is wrapped by New's errors about the Options
// themselves (rather than about the root on disk).
var ErrInvalidOptions = errors.New("invalid static options")

// ErrRootNotDirectory is wrapped by New's error for a root that exists
// but is not a directory.
var ErrRootNotDirectory = errors.New("static root is not a directory")

// coding is one precompressed encoding looked for.
type coding struct {
	name   string   // the Content-Encoding token
	suffix string   // the sibling's extension
	header []string // the Content-Encoding value, shared read-only
	tag    string   // what the ETag carries to tell the variant apart
}

var knownCodings = map[string]coding{
	"br":   {name: "br", suffix: ".br", tag: "br"},
	"zstd": {name: "zstd", suffix: ".zst", tag: "zst"},
	"gzip": {name: "gzip", suffix: ".gz", tag: "gz"},
}

// tryEntry is one try_files entry, split around "$path".
type tryEntry struct {
	raw     string
	pre     string
	suf     string
	hasPath bool
	code    int // "=CODE": answer with this status
}

// Server serves one static route. It is safe for concurrent use.
type Server struct {
	dir           string
	index         []string
	try           []tryEntry
	cacheControl  string
	codings       []coding
	allowSymlinks bool

	root   atomic.Pointer[rootHandle] // the root directory as last opened
	rootMu sync.Mutex                 // serializes reopening it
	meta   metaCache
	cache  *fileCache // nil when no file is kept in memory

	now   func() time.Time
	start time.Time // what clock readings count from
}

// rootHandle is the root directory opened, and which directory that was.
type rootHandle struct {
	root     *os.Root
	dev, ino uint64
	checked  atomic.Int64 // the clock when a stat last found the path naming it
}

// clock is the time since the Server started, monotonic with time.Now,
// in nanoseconds.
func (s *Server) clock() int64 {
	return int64(s.now().Sub(s.start))
}

// New checks o and returns its Server.
func New(o Options) (*Server, error) {
	if o.Root == "" || !filepath.IsAbs(o.Root) {
		return nil, fmt.Errorf("root %q must be an absolute directory: %w", o.Root, ErrInvalidOptions)
	}
	fi, err := os.Stat(o.Root)
	if err != nil {
		return nil, fmt.Errorf("static root: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%q: %w", o.Root, ErrRootNotDirectory)
	}
	s := &Server{
		dir:           filepath.Clean(o.Root),
		cacheControl:  o.CacheControl,
		allowSymlinks: o.AllowSymlinks,
		cache:         newFileCache(o.CacheFileMax, o.CacheTotal),
		now:           o.Now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.start = s.now()
	s.index = o.Index
	if len(s.index) == 0 {
		s.index = []string{"index.html"}
	}
	for _, name := range s.index {
		if name == "" || strings.HasPrefix(name, "/") || strings.ContainsAny(name, "\x00\\") {
			return nil, fmt.Errorf("index %q must be a relative name: %w", name, ErrInvalidOptions)
		}
		if _, _, st := cleanPath("/" + name); st != 0 || strings.HasSuffix(name, "/") {
			return nil, fmt.Errorf("index %q must name a file beneath the directory: %w", name, ErrInvalidOptions)
		}
	}
	seen := map[string]bool{}
	for _, name := range o.Precompressed {
		c, ok := knownCodings[name]
		if !ok {
			return nil, fmt.Errorf("precompressed encoding %q is not one of br, zstd, gzip: %w", name, ErrInvalidOptions)
		}
		if seen[name] {
			return nil, fmt.Errorf("precompressed encoding %q is named twice: %w", name, ErrInvalidOptions)
		}
		seen[name] = true
		c.header = []string{c.name}
		s.codings = append(s.codings, c)
	}
	for i, raw := range o.TryFiles {
		e := tryEntry{raw: raw}
		switch {
		case strings.HasPrefix(raw, "="):
			code, err := strconv.Atoi(raw[1:])
			if err != nil || code < 200 || code > 599 || i != len(o.TryFiles)-1 {
				return nil, fmt.Errorf("try_files entry %q: a status (=CODE, 200 to 599) may only be the last entry: %w", raw, ErrInvalidOptions)
			}
			e.code = code
		case strings.Contains(raw, "$path"):
			pre, suf, _ := strings.Cut(raw, "$path")
			if strings.Contains(suf, "$path") {
				return nil, fmt.Errorf("try_files entry %q names $path twice: %w", raw, ErrInvalidOptions)
			}
			if pre != "" && !strings.HasPrefix(pre, "/") {
				return nil, fmt.Errorf("try_files entry %q must start with / or $path: %w", raw, ErrInvalidOptions)
			}
			e.pre, e.suf, e.hasPath = pre, suf, true
		default:
			if _, _, st := cleanPath(raw); st != 0 || !strings.HasPrefix(raw, "/") {
				return nil, fmt.Errorf("try_files entry %q must be a path beneath the root, $path or =CODE: %w", raw, ErrInvalidOptions)
			}
		}
		s.try = append(s.try, e)
	}
	return s, nil
}

// cleanPath turns a decoded request path into a name relative to the root
// ("" for the root itself) and whether it asked for a directory (a
// trailing slash). A refused path gets a non-zero status: 400 for a NUL
// byte, 404 for a backslash or a "." or ".." segment. Empty segments
// (doubled slashes) are dropped, as nginx's merge_slashes does.
func cleanPath(p string) (rel string, dir bool, status int) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", false, http.StatusBadRequest
	}
	if strings.IndexByte(p, '\\') >= 0 {
		return "", false, http.StatusNotFound
	}
	// "" is what a caller's prefix stripping leaves of the prefix itself
	// (/static for /static/): the root without its slash.
	dir = p != "" && p[len(p)-1] == '/'
	trimmed := strings.Trim(p, "/")
	clean := true // no empty segment inside
	for seg := range strings.SplitSeq(trimmed, "/") {
		switch seg {
		case ".", "..":
			return "", false, http.StatusNotFound
		case "":
			if trimmed != "" {
				clean = false
			}
		}
	}
	if clean {
		return trimmed, dir, 0
	}
	var b strings.Builder
	b.Grow(len(trimmed))
	for seg := range strings.SplitSeq(trimmed, "/") {
		if seg == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(seg)
	}
	return b.String(), dir, 0
}

// fsys opens names beneath the root for one request.
type fsys struct {
	root *os.Root    // nil when symlinks are followed anywhere
	h    *rootHandle // what root came from
	dir  string
}

// openFS returns the root for one request. The root is kept open while
// its path still names the same directory, checked by a stat at most
// once a revalidateEvery (cheaper than opening it each time); when a
// deploy switches the path (a symlink swapped, a directory renamed
// over), the new directory is opened and serves from then on, with the
// files kept in memory from the old one dropped. The old one is left to
// its finalizer, since requests that hold it may still be opening files
// through it.
func (s *Server) openFS(now int64) (fsys, error) {
	if s.allowSymlinks {
		return fsys{dir: s.dir}, nil
	}
	h := s.root.Load()
	if h != nil && now-h.checked.Load() < int64(revalidateEvery) {
		return fsys{root: h.root, h: h, dir: s.dir}, nil
	}
	var st syscall.Stat_t
	if err := syscall.Stat(s.dir, &st); err != nil {
		return fsys{}, &os.PathError{Op: "stat", Path: s.dir, Err: err}
	}
	if h != nil && h.dev == uint64(st.Dev) && h.ino == st.Ino {
		h.checked.Store(now)
		return fsys{root: h.root, h: h, dir: s.dir}, nil
	}
	s.rootMu.Lock()
	defer s.rootMu.Unlock()
	if h := s.root.Load(); h != nil && h.dev == uint64(st.Dev) && h.ino == st.Ino {
		h.checked.Store(now)
		return fsys{root: h.root, h: h, dir: s.dir}, nil
	}
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return fsys{}, err
	}
	// Record what was opened, which may be newer than what was stat'ed.
	fi, err := root.Stat(".")
	if err != nil {
		root.Close()
		return fsys{}, err
	}
	h = &rootHandle{root: root}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		h.dev, h.ino = uint64(sys.Dev), sys.Ino
	}
	h.checked.Store(now)
	s.root.Store(h)
	s.cache.clear()
	return fsys{root: root, h: h, dir: s.dir}, nil
}

// Close closes the root directory the Server holds open. Serve must not
// be called after.
func (s *Server) Close() error {
	s.rootMu.Lock()
	defer s.rootMu.Unlock()
	s.cache.clear()
	if h := s.root.Swap(nil); h != nil {
		return h.root.Close()
	}
	return nil
}

// stat describes rel ("" is the root), following symlinks under the same
// confinement as open.
func (f fsys) stat(rel string) (fs.FileInfo, error) {
	if f.root != nil {
		if rel == "" {
			rel = "."
		}
		return f.root.Stat(rel)
	}
	return os.Stat(f.dir + "/" + rel)
}

// open opens rel ("" is the root) without blocking on a FIFO, and stats it.
func (f fsys) open(rel string) (*os.File, fs.FileInfo, error) {
	const flags = os.O_RDONLY | syscall.O_NONBLOCK
	name := rel
	if name == "" {
		name = "."
	}
	var file *os.File
	var err error
	if f.root != nil {
		file, err = f.root.OpenFile(name, flags, 0)
	} else {
		file, err = os.OpenFile(f.dir+"/"+rel, flags, 0)
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := file.Stat()
	if err != nil {
		file.Close()
		return nil, nil, err
	}
	return file, fi, nil
}

// openRegular opens rel if it is a regular file.
func (f fsys) openRegular(rel string) (*os.File, fs.FileInfo, error) {
	file, fi, err := f.open(rel)
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		file.Close()
		return nil, nil, errNotRegular
	}
	return file, fi, nil
}

var errNotRegular = errors.New("not a regular file")

// target is the file chosen to answer: open, or kept in memory.
type target struct {
	f   *os.File // nil when c is set
	c   *cached
	fi  fs.FileInfo
	rel string
}

func (t target) close() {
	if t.f != nil {
		t.f.Close()
	}
}

// openRegular finds rel if it is a regular file: kept in memory, or
// opened (and kept if small enough).
func (s *Server) openRegular(f fsys, rel string, now int64, sc *scratch) (target, error) {
	if e := s.cache.get(f, rel, now); e != nil {
		return target{c: e, fi: e.fi, rel: rel}, nil
	}
	file, fi, err := f.openRegular(rel)
	if err != nil {
		return target{}, err
	}
	return s.cache.load(f, rel, file, fi, now, sc), nil
}

// errStatus maps an open failure to its answer: not found for whatever
// says nothing about the server's health (missing, escaping, not a
// directory, a loop, a permission), 500 for a shortage of resources or an
// I/O error.
func errStatus(err error) int {
	switch {
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE),
		errors.Is(err, syscall.ENOMEM), errors.Is(err, syscall.EIO):
		return http.StatusInternalServerError
	}
	return http.StatusNotFound
}

// findIndex opens the first index file of directory rel.
func (s *Server) findIndex(f fsys, rel string, now int64, sc *scratch) (target, error) {
	var last error = fs.ErrNotExist
	for _, name := range s.index {
		irel := name
		if rel != "" {
			irel = rel + "/" + name
		}
		t, err := s.openRegular(f, irel, now, sc)
		if err == nil {
			return t, nil
		}
		if errStatus(err) != http.StatusNotFound {
			return target{}, err
		}
		last = err
	}
	return target{}, last
}

// lookup finds what rel answers for: a regular file, or with dir set a
// directory's index.
func (s *Server) lookup(f fsys, rel string, dir bool, now int64, sc *scratch) (target, error) {
	if dir {
		return s.findIndex(f, rel, now, sc)
	}
	return s.openRegular(f, rel, now, sc)
}

// Serve answers r for the URL path path (decoded; it may differ from
// r.URL.Path when the caller stripped a prefix). It writes the whole
// answer to w and returns what it did, for the access log.
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, path string) Result {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = []string{"GET, HEAD"}
		return fail(w, r, http.StatusMethodNotAllowed)
	}
	rel, dir, st := cleanPath(path)
	if st != 0 {
		return fail(w, r, st)
	}
	now := s.clock()
	f, err := s.openFS(now)
	if err != nil {
		return fail(w, r, http.StatusInternalServerError)
	}
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	if s.try != nil {
		if path == "" {
			// Nothing is redirected under try_files: $path names the
			// root as it does when asked for with its slash.
			path = "/"
		}
		return s.serveTry(w, r, f, path, now, sc)
	}
	// A kept file answers without opening anything. Under a trailing
	// slash that is the first index name: it was kept from beneath a
	// directory, which the path still names unless it changed within the
	// revalidation interval.
	if s.cache != nil {
		kept := rel
		if dir {
			kept = s.index[0]
			if rel != "" {
				kept = rel + "/" + kept
			}
		}
		if e := s.cache.get(f, kept, now); e != nil {
			return s.serveFile(w, r, f, target{c: e, fi: e.fi, rel: kept}, now, sc)
		}
	}
	file, fi, err := f.open(rel)
	if err != nil {
		return fail(w, r, errStatus(err))
	}
	switch {
	case fi.Mode().IsRegular():
		if dir {
			file.Close()
			return fail(w, r, http.StatusNotFound)
		}
		return s.serveFile(w, r, f, s.cache.load(f, rel, file, fi, now, sc), now, sc)
	case fi.IsDir():
		file.Close()
		t, err := s.findIndex(f, rel, now, sc)
		if err != nil {
			return fail(w, r, errStatus(err))
		}
		if !dir {
			if loc := dirLocation(r, rel); loc != "" {
				t.close()
				return redirect(w, r, loc)
			}
		}
		return s.serveFile(w, r, f, t, now, sc)
	default:
		file.Close()
		return fail(w, r, http.StatusNotFound)
	}
}

func (s *Server) serveTry(w http.ResponseWriter, r *http.Request, f fsys, path string, now int64, sc *scratch) Result {
	for _, e := range s.try {
		if e.code != 0 {
			return fail(w, r, e.code)
		}
		cand := e.raw
		if e.hasPath {
			cand = path
			if e.pre != "" || e.suf != "" {
				cand = e.pre + path + e.suf
			}
		}
		rel, dir, st := cleanPath(cand)
		if st != 0 {
			continue
		}
		t, err := s.lookup(f, rel, dir, now, sc)
		if err == nil {
			return s.serveFile(w, r, f, t, now, sc)
		}
		if st := errStatus(err); st != http.StatusNotFound {
			return fail(w, r, st)
		}
	}
	return fail(w, r, http.StatusNotFound)
}

// dirLocation is where a directory asked for without its slash is sent:
// the slash form of the URL the client asked for, relative (./NAME/,
// NAME its last segment as the client wrote it) so that it stays right
// whatever prefix the caller stripped from the path or added to it. For
// the root itself (rel ""), when the URL already ends in a slash there
// is nowhere to send it, and "" says to serve the index.
func dirLocation(r *http.Request, rel string) string {
	name := escapeSegment(rel[strings.LastIndexByte(rel, '/')+1:])
	if r.URL != nil {
		if p := r.URL.EscapedPath(); p != "" && !strings.HasSuffix(p, "/") {
			name = p[strings.LastIndexByte(p, '/')+1:]
		} else if rel == "" {
			return ""
		}
	} else if rel == "" {
		return ""
	}
	loc := "./" + name + "/"
	if r.URL != nil && r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	return loc
}

func redirect(w http.ResponseWriter, r *http.Request, loc string) Result {
	w.Header()["Location"] = []string{loc}
	return fail(w, r, http.StatusPermanentRedirect)
}

// escapeSegment percent-encodes what cannot stand in a path segment.
func escapeSegment(s string) string {
	const hex = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !segmentSafe(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if segmentSafe(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&15])
	}
	return string(b)
}

func segmentSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', ':', '@':
		return true
	}
	return false
}
