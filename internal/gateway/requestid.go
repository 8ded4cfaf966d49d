package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
	"unsafe"
)

// requestIDs makes request ids unique across restarts of gatehouse: a
// random per-process prefix and a counter.
type requestIDs struct {
	prefix []byte
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	rand.Read(b[:])
	p := make([]byte, 0, 32)
	p = hex.AppendEncode(p, b[:])
	return &requestIDs{prefix: append(p, '-')}
}

// idSlabSize is the size of the blocks ids are cut from: one allocation
// for about forty requests' ids.
const idSlabSize = 1024

// maxIDLen bounds an id's length: the 13-byte prefix and a base-36
// uint64 (13 digits at most).
const maxIDLen = 13 + 13

// next returns a new id, cut from *slab, which it replaces when it is
// full. An id's bytes are never written again once it is made: the slab
// is only appended to, and a full one is left to the ids that refer to
// it (and the collector) rather than reused. So the string may outlive
// the request (an access entry, an event) like any other.
func (g *requestIDs) next(slab *[]byte) string {
	b := *slab
	if cap(b)-len(b) < maxIDLen {
		b = make([]byte, 0, idSlabSize)
	}
	start := len(b)
	b = append(b, g.prefix...)
	b = strconv.AppendUint(b, g.n.Add(1), 36)
	*slab = b
	return unsafe.String(&b[start], len(b)-start)
}
