package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

// requestIDs makes request ids unique across restarts of gatehouse: a
// random per-process prefix and a counter, with no allocation beyond the
// string itself.
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

func (g *requestIDs) next(buf []byte) string {
	buf = append(buf[:0], g.prefix...)
	buf = strconv.AppendUint(buf, g.n.Add(1), 36)
	return string(buf)
}
