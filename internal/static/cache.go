package static

import (
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of the small-file cache.
const (
	defaultCacheFileMax = 64 << 10
	defaultCacheTotal   = 32 << 20
	// revalidateEvery is how long a cached file, and the open root, are
	// trusted before a stat checks them again (nginx's
	// open_file_cache_valid).
	revalidateEvery = time.Second
	// entryOverhead is what an entry costs beside its bytes, counted
	// against the total so that many empty files are bounded too.
	entryOverhead = 256
)

// cached is one small regular file held in memory, as read through the
// root it names.
type cached struct {
	rel   string
	h     *rootHandle // the root it was opened through; nil when symlinks are followed anywhere
	fi    fs.FileInfo
	data  []byte
	ctype string // by extension, else sniffed
	cost  int64

	checked atomic.Int64 // the clock when a stat last confirmed it
	used    atomic.Bool  // asked for since the clock hand last passed
	pos     int          // index in fileCache.ring, -1 once removed; under fileCache.mu
}

// fileCache keeps small files' bytes and what describes them, keyed by
// the cleaned name relative to the root, so that a hit makes no file
// system call. An entry is trusted for revalidateEvery, then stat'ed
// through the root again (which applies the same confinement as opening)
// and dropped if the file changed, left the root or went away. Eviction
// is by clock (second chance) within a total size.
type fileCache struct {
	maxFile, maxTotal int64

	mu    sync.RWMutex
	files map[string]*cached
	ring  []*cached
	hand  int
	total int64
}

func newFileCache(maxFile, maxTotal int64) *fileCache {
	if maxFile < 0 || maxTotal < 0 {
		return nil
	}
	if maxFile == 0 {
		maxFile = defaultCacheFileMax
	}
	if maxTotal == 0 {
		maxTotal = defaultCacheTotal
	}
	return &fileCache{maxFile: maxFile, maxTotal: maxTotal, files: map[string]*cached{}}
}

// get returns rel's entry if it is held for f's root and, at most
// revalidateEvery old, still names the same file.
func (c *fileCache) get(f fsys, rel string, now int64) *cached {
	if c == nil {
		return nil
	}
	c.mu.RLock()
	e := c.files[rel]
	c.mu.RUnlock()
	if e == nil {
		return nil
	}
	if e.h != f.h {
		c.remove(e)
		return nil
	}
	if now-e.checked.Load() >= int64(revalidateEvery) {
		fi, err := f.stat(rel)
		if err != nil || !fi.Mode().IsRegular() || !sameVersion(fi, e.fi) {
			c.remove(e)
			return nil
		}
		e.checked.Store(now)
	}
	if !e.used.Load() {
		e.used.Store(true)
	}
	return e
}

// load keeps file in memory if it is small enough, and returns the target
// that answers with it: the entry (file closed) or the file itself.
func (c *fileCache) load(f fsys, rel string, file *os.File, fi fs.FileInfo, now int64, sc *scratch) target {
	size := fi.Size()
	if c == nil || size > c.maxFile || size+entryOverhead > c.maxTotal {
		return target{f: file, fi: fi, rel: rel}
	}
	data := make([]byte, size)
	if n, _ := file.ReadAt(data, 0); n != len(data) {
		return target{f: file, fi: fi, rel: rel}
	}
	e := &cached{rel: rel, h: f.h, fi: fi, data: data, pos: -1,
		cost: size + entryOverhead + int64(len(rel))}
	e.ctype = contentType(target{fi: fi, rel: rel, c: e}, sc)
	e.checked.Store(now)
	c.insert(e)
	file.Close()
	return target{c: e, fi: fi, rel: rel}
}

func (c *fileCache) insert(e *cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.files[e.rel]; old != nil {
		c.removeLocked(old)
	}
	for c.total+e.cost > c.maxTotal && len(c.ring) > 0 {
		c.evictLocked()
	}
	if c.total+e.cost > c.maxTotal {
		return
	}
	e.pos = len(c.ring)
	c.ring = append(c.ring, e)
	c.files[e.rel] = e
	c.total += e.cost
}

// evictLocked removes the first entry under the hand not asked for since
// the hand last passed it, clearing the marks it passes; after two turns
// it takes whatever is under the hand, so readers marking entries
// meanwhile cannot hold it up.
func (c *fileCache) evictLocked() {
	for range 2 * len(c.ring) {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		e := c.ring[c.hand]
		if !e.used.Load() {
			c.removeLocked(e)
			return
		}
		e.used.Store(false)
		c.hand++
	}
	if c.hand >= len(c.ring) {
		c.hand = 0
	}
	c.removeLocked(c.ring[c.hand])
}

func (c *fileCache) remove(e *cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removeLocked(e)
}

func (c *fileCache) removeLocked(e *cached) {
	if e.pos < 0 || e.pos >= len(c.ring) || c.ring[e.pos] != e {
		return
	}
	last := c.ring[len(c.ring)-1]
	c.ring[e.pos], last.pos = last, e.pos
	c.ring[len(c.ring)-1] = nil
	c.ring = c.ring[:len(c.ring)-1]
	if c.files[e.rel] == e {
		delete(c.files, e.rel)
	}
	c.total -= e.cost
	e.pos = -1
}

// clear drops every entry: the root they were read through is no longer
// the one served.
func (c *fileCache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.ring {
		e.pos = -1
	}
	c.files = map[string]*cached{}
	c.ring = nil
	c.hand = 0
	c.total = 0
}

// sameVersion says whether two stats describe the same version of the
// same file: a rewrite changes the modification or change time, a chmod
// the change time, a replacement the inode.
func sameVersion(a, b fs.FileInfo) bool {
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	if !ok1 || !ok2 {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino && sa.Size == sb.Size && sa.Mode == sb.Mode &&
		sa.Mtim == sb.Mtim && sa.Ctim == sb.Ctim
}
