package http1

import (
	"sync"
	"unsafe"
)

// A parsed head's fields are strings that outlive the reader's buffer:
// the head is copied once, and the fields are slices of the copy. Copying
// each head into its own allocation cost the hot path two allocations
// per request (its head and its answer's). headString cuts the copies
// from shared blocks instead. A block is only ever appended to: the bytes
// of a string cut from it are never written again, and a full block is
// dropped (left to the strings that refer to it, and then the collector),
// never reused. So the strings are as immutable as any, and may outlive
// their request; one that does keeps its block (blockSize) alive, as a
// substring keeps its string.

// blockSize is the size of a block: a few dozen plain heads.
const blockSize = 8 << 10

// maxCut is the largest head cut from a block; a larger one has its own
// allocation, as before.
const maxCut = 1 << 10

type block struct{ b []byte }

// blocks holds the blocks being cut, about one per P.
var blocks = sync.Pool{New: func() any { return new(block) }}

// headString returns a string with p's bytes that does not alias p.
func headString(p []byte) string {
	if len(p) == 0 || len(p) > maxCut {
		return string(p)
	}
	bl := blocks.Get().(*block)
	if cap(bl.b)-len(bl.b) < len(p) {
		bl.b = make([]byte, 0, blockSize)
	}
	start := len(bl.b)
	bl.b = append(bl.b, p...)
	s := unsafe.String(&bl.b[start], len(p))
	blocks.Put(bl)
	return s
}
