package static

import (
	"io/fs"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
)

// metaSlots is how many files' header values a Server keeps formatted.
const metaSlots = 1024

// metaKey names one version of one file: a change of content that keeps
// the size changes the modification time, a replacement the inode.
type metaKey struct {
	dev, ino    uint64
	size, mtime int64
	coding      string
}

// meta is the formatted validators and length of one version of a file.
type meta struct {
	key                   metaKey
	etag, lastMod, length string
}

// metaCache keeps the header values of recently served files, so a hit
// formats nothing. It is direct-mapped and lock-free: a slot holds the
// last file hashed to it.
type metaCache [metaSlots]atomic.Pointer[meta]

// lookup returns fi's header values, formatting them on a miss.
func (c *metaCache) lookup(fi fs.FileInfo, enc *coding, sc *scratch) *meta {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return newMeta(metaKey{}, fi, enc, sc)
	}
	k := metaKey{dev: uint64(st.Dev), ino: st.Ino, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if enc != nil {
		k.coding = enc.name
	}
	slot := &c[(k.ino*0x9E3779B97F4A7C15^k.dev)>>54%metaSlots]
	if m := slot.Load(); m != nil && m.key == k {
		return m
	}
	m := newMeta(k, fi, enc, sc)
	slot.Store(m)
	return m
}

func newMeta(k metaKey, fi fs.FileInfo, enc *coding, sc *scratch) *meta {
	m := &meta{key: k, length: strconv.FormatInt(fi.Size(), 10)}
	m.etag = makeETag(sc, fi.ModTime(), fi.Size(), enc)
	if t := fi.ModTime(); !isZeroTime(t) {
		sc.buf = t.UTC().AppendFormat(sc.buf[:0], http.TimeFormat)
		m.lastMod = string(sc.buf)
	}
	return m
}
