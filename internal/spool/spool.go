// Package spool holds a body read ahead of the one who will read it: an
// answer read whole from the app so that the app's connection and its
// instance's slot are free while a slow client takes it, or a request
// body read whole from the client before an instance is asked. The bytes
// are kept in memory while every budget charged allows, and in an
// unlinked temporary file beyond.
//
// spool imports nothing of gatehouse.
package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// Budget bounds the memory some spools hold together: all of a process's
// (buffer_memory), or one client connection's (connection_buffer). A nil
// Budget allows everything.
type Budget struct {
	limit int64
	used  atomic.Int64
}

// NewBudget returns a budget of limit bytes; limit <= 0 allows nothing
// to be held in memory.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// SetLimit sets b's limit: for a Budget kept by value, whose zero value
// allows nothing.
func (b *Budget) SetLimit(limit int64) { b.limit = limit }

// Used is how many bytes spools hold in memory against b.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// Take charges n bytes to b: false, and nothing charged, when that
// would go past its limit.
func (b *Budget) Take(n int64) bool {
	if b == nil {
		return true
	}
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

// Give returns n bytes Take charged.
func (b *Budget) Give(n int64) {
	if b != nil {
		b.used.Add(-n)
	}
}

// Memory is the two budgets memory is charged to together: the
// process's (buffer_memory) and the client connection's
// (connection_buffer).
type Memory [2]*Budget

// Take charges n bytes to both budgets, or, when either would go past
// its limit, to neither.
func (m Memory) Take(n int64) bool {
	if !m[0].Take(n) {
		return false
	}
	if !m[1].Take(n) {
		m[0].Give(n)
		return false
	}
	return true
}

// Give returns n bytes Take charged.
func (m Memory) Give(n int64) {
	m[0].Give(n)
	m[1].Give(n)
}

// Chunk sizes: most answers are small, and a small one held in a large
// chunk would count (and cost) eight times its size.
const (
	smallChunk = 4 << 10
	largeChunk = 32 << 10
)

var (
	smallChunks = sync.Pool{New: func() any { return new([smallChunk]byte) }}
	largeChunks = sync.Pool{New: func() any { return new([largeChunk]byte) }}
)

// Spool is a body read ahead. Fill it, read it (Read or WriteTo), Rewind
// it to read it again, and Close it to give back its memory and file.
// The zero Spool is not usable; see Init.
type Spool struct {
	dir  string
	mem  Memory
	disk *Budget
	// diskCharged is what disk was charged: the file's bytes, and the
	// room of a read into scratch under way.
	diskCharged int64
	chunks      [][]byte // full chunks, the last one filled up to its len
	charged     int64
	file        *os.File
	fileLen     int64
	// scratch is where bytes bound for the file are read first; tail the
	// bytes read there that the file failed to take (see ErrSpill).
	scratch *[largeChunk]byte
	tail    []byte
	tailOff int
	size    int64
	// eof: the source ended within what was filled.
	eof bool

	// read position: chunk index and offset into it, then the file's.
	ci, co  int
	fileOff int64
}

// Init readies s to be filled, charging its memory to process and conn
// and spilling beyond them to a file in dir ("" for the system's
// temporary directory), whose bytes are charged to disk (nil budgets
// allow everything).
func (s *Spool) Init(dir string, process, conn, disk *Budget) {
	*s = Spool{dir: dir, mem: Memory{process, conn}, disk: disk, chunks: s.chunks[:0]}
}

// ErrLonger is the error of a source longer than the size it declared.
var ErrLonger = errors.New("spool: body longer than its declared length")

// ErrSpill is the error of a spool that could not spill: its disk budget
// is spent (ErrNoRoom), or its file could not be made or written.
// Nothing read is lost: the spool holds all it read, and the rest is
// still in the source.
var ErrSpill = errors.New("spool: write the spill file")

// ErrNoRoom is ErrSpill's case of a spent disk budget.
var ErrNoRoom = fmt.Errorf("%w: the disk budget is spent", ErrSpill)

// Fill reads from r until r ends or max bytes are held, whichever comes
// first; sizeHint (the body's declared length, or -1) picks the first
// chunk's size. It reports whether r ended within them: when not, the
// rest of the body is still in r. An error reading r is returned as is;
// an error of the spill file wraps ErrSpill.
func (s *Spool) Fill(r io.Reader, max, sizeHint int64) (ended bool, err error) {
	for s.size < max {
		buf, err := s.room(max-s.size, sizeHint)
		if err != nil {
			return false, err
		}
		// One Read, its error taken with its bytes: a source may say it
		// broke only once. Only io.EOF ends the body; io.ErrUnexpectedEOF
		// is a body cut short.
		n, rerr := r.Read(buf)
		if s.scratch != nil && s.file != nil && &buf[0] == &s.scratch[0] {
			// The room charged to disk and not filled goes back.
			unused := int64(len(buf) - n)
			s.disk.Give(unused)
			s.diskCharged -= unused
		}
		if n > 0 {
			if werr := s.keep(buf[:n]); werr != nil {
				if rerr != nil && rerr != io.EOF {
					return false, rerr // (what was read is held still)
				}
				return false, werr
			}
		}
		if rerr == io.EOF {
			s.eof = true
			return true, nil
		}
		if rerr != nil {
			return false, rerr
		}
	}
	if sizeHint >= 0 && s.size == sizeHint {
		// The declared length held whole: the source's EOF is a
		// formality, taken without a wait (a body of known length ends
		// at its length).
		var one [1]byte
		n, rerr := r.Read(one[:])
		if n > 0 {
			return false, ErrLonger
		}
		if rerr == io.EOF {
			s.eof = true
			return true, nil
		}
		if rerr != nil {
			// A source whose end is more than its length (an HTTP/2
			// stream waits for END_STREAM) may fail there: a body that
			// timed out or was reset before its end. Taken for a body
			// longer than max, its failure would come again only from
			// the reader it is handed to, the app's side waiting it out
			// anew.
			return false, rerr
		}
	}
	return false, nil
}

// room returns where the next bytes go: the unused end of the last
// memory chunk, a new chunk the budgets allow, or scratch space for the
// file.
func (s *Spool) room(left, sizeHint int64) ([]byte, error) {
	if s.file == nil {
		if k := len(s.chunks); k > 0 {
			last := s.chunks[k-1]
			if len(last) < cap(last) {
				return last[len(last):min(int64(cap(last)), int64(len(last))+left)], nil
			}
		}
		size := int64(largeChunk)
		if s.size == 0 && sizeHint >= 0 && sizeHint <= smallChunk {
			size = smallChunk
		}
		if s.mem.Take(size) {
			s.charged += size
			c := s.newChunk(size)
			s.chunks = append(s.chunks, c)
			return c[:min(size, left)], nil
		}
	}
	size := min(int64(largeChunk), left)
	if !s.disk.Take(size) {
		return nil, ErrNoRoom
	}
	s.diskCharged += size
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "gatehouse-body-*")
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSpill, err)
		}
		// Unlinked at once: nothing is left behind, whatever becomes of
		// the process.
		os.Remove(f.Name())
		s.file = f
	}
	if s.scratch == nil {
		s.scratch = largeChunks.Get().(*[largeChunk]byte)
	}
	return s.scratch[:size], nil
}

// Buffer lends a buffer from the pools spools take their chunks from:
// 4 KiB for size up to 4 KiB, else 32 KiB. Give it back with Release.
func Buffer(size int) []byte {
	if size <= smallChunk {
		return smallChunks.Get().(*[smallChunk]byte)[:]
	}
	return largeChunks.Get().(*[largeChunk]byte)[:]
}

// Release gives back a buffer Buffer lent, whatever its length now.
func Release(b []byte) {
	switch cap(b) {
	case smallChunk:
		smallChunks.Put((*[smallChunk]byte)(b[:smallChunk]))
	case largeChunk:
		largeChunks.Put((*[largeChunk]byte)(b[:largeChunk]))
	}
}

func (s *Spool) newChunk(size int64) []byte {
	if size == smallChunk {
		return smallChunks.Get().(*[smallChunk]byte)[:0]
	}
	return largeChunks.Get().(*[largeChunk]byte)[:0]
}

// keep records b, just read into room's buffer.
func (s *Spool) keep(b []byte) error {
	s.size += int64(len(b))
	if s.file == nil {
		k := len(s.chunks) - 1
		s.chunks[k] = s.chunks[k][:len(s.chunks[k])+len(b)]
		return nil
	}
	if _, err := s.file.WriteAt(b, s.fileLen); err != nil {
		// Read, and still held: they come after the file's.
		s.tail = b
		return fmt.Errorf("%w: %w", ErrSpill, err)
	}
	s.fileLen += int64(len(b))
	return nil
}

// Len is how many bytes s holds.
func (s *Spool) Len() int64 { return s.size }

// Ended reports whether the body ended within what s holds.
func (s *Spool) Ended() bool { return s.eof }

// OnDisk reports whether part of s is in its spill file.
func (s *Spool) OnDisk() bool { return s.file != nil }

// Read reads what s holds, from where the last Read or Rewind left it.
func (s *Spool) Read(p []byte) (int, error) {
	mem := s.chunks
	for s.ci < len(mem) {
		c := mem[s.ci]
		if s.co < len(c) {
			n := copy(p, c[s.co:])
			s.co += n
			return n, nil
		}
		s.ci, s.co = s.ci+1, 0
	}
	if s.file != nil && s.fileOff < s.fileLen {
		n, err := s.file.ReadAt(p[:min(int64(len(p)), s.fileLen-s.fileOff)], s.fileOff)
		s.fileOff += int64(n)
		if err == io.EOF && n > 0 {
			err = nil
		}
		return n, err
	}
	if s.tailOff < len(s.tail) {
		n := copy(p, s.tail[s.tailOff:])
		s.tailOff += n
		return n, nil
	}
	return 0, io.EOF
}

// WriteTo writes what s holds from its read position, memory chunks as
// they are, without a copy.
func (s *Spool) WriteTo(w io.Writer) (int64, error) {
	var total int64
	mem := s.chunks
	for ; s.ci < len(mem); s.ci, s.co = s.ci+1, 0 {
		n, err := w.Write(mem[s.ci][s.co:])
		total += int64(n)
		if err != nil {
			s.co += n
			return total, err
		}
	}
	if s.file == nil || s.fileOff >= s.fileLen {
		n, err := s.writeTail(w)
		return total + n, err
	}
	buf := largeChunks.Get().(*[largeChunk]byte)
	defer largeChunks.Put(buf)
	for s.fileOff < s.fileLen {
		n, err := s.file.ReadAt(buf[:min(int64(largeChunk), s.fileLen-s.fileOff)], s.fileOff)
		if n > 0 {
			s.fileOff += int64(n)
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err != nil && err != io.EOF {
			return total, err
		}
	}
	n, err := s.writeTail(w)
	return total + n, err
}

func (s *Spool) writeTail(w io.Writer) (int64, error) {
	if s.tailOff >= len(s.tail) {
		return 0, nil
	}
	n, err := w.Write(s.tail[s.tailOff:])
	s.tailOff += n
	return int64(n), err
}

// Rewind makes the next Read start from the first byte again.
func (s *Spool) Rewind() { s.ci, s.co, s.fileOff, s.tailOff = 0, 0, 0, 0 }

// Close gives back s's memory to its budgets and its chunks to the pool,
// and closes its file. s may be Init again.
func (s *Spool) Close() error {
	for _, c := range s.chunks {
		Release(c)
	}
	clear(s.chunks)
	s.chunks = s.chunks[:0]
	if s.scratch != nil {
		largeChunks.Put(s.scratch)
		s.scratch = nil
	}
	s.mem.Give(s.charged)
	s.disk.Give(s.diskCharged)
	s.diskCharged = 0
	s.charged = 0
	var err error
	if s.file != nil {
		err = s.file.Close()
		s.file = nil
	}
	s.size, s.fileLen, s.eof, s.tail = 0, 0, false, nil
	s.Rewind()
	return err
}
