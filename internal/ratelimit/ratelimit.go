package ratelimit

import (
	"crypto/sha256"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// DefaultMaxKeys is the table's bound when Options.MaxKeys is not set.
	DefaultMaxKeys = 100_000

	// MaxKeyLen is the longest key kept as it is. A longer key is kept as
	// its SHA-256 digest (32 bytes), so that a client sending huge header
	// values cannot make the table hold them. A short key equal to some
	// long key's digest would share its bucket; finding one needs a
	// SHA-256 preimage, and whoever knows the long key can send it anyway.
	MaxKeyLen = 256

	// MaxRate and MinRate bound a rate so that a token's interval is a
	// whole number of nanoseconds of at least one, and a bucket's span
	// (Burst intervals) stays far from overflowing an int64.
	MaxRate = 1e9                 // tokens a second: one a nanosecond
	MinRate = 1.0 / (86400 * 365) // one a year

	maxShards       = 64
	minKeysPerShard = 1024
	maxSpan         = int64(100 * 365 * 24 * time.Hour)
)

// Options configure a Limiter.
type Options struct {
	// Rate is the tokens a bucket gains a second, within [MinRate,
	// MaxRate]; ParseRate reads it as config writes it ("10/s", "600/m").
	Rate float64
	// Burst is a bucket's size; when not positive, max(1, ceil(Rate)).
	Burst int
	// MaxKeys bounds the table; when not positive, DefaultMaxKeys.
	MaxKeys int
}

// Stats are a Limiter's counts since it was made.
type Stats struct {
	Allowed uint64 // requests that took a token
	Limited uint64 // requests refused
	Evicted uint64 // keys dropped to make room for another
}

// Limiter is a table of token buckets, one per key. It is safe for
// concurrent use.
//
// Memory, measured with keys of up to 15 bytes (IPv4 addresses as text)
// and MaxKeys 100,000: about 90 bytes a key while the table fills, and
// 122 once it is full and evicting (the maps' slack for deleted slots),
// where it stays however many distinct keys pass through it: 12 MB for
// the default bound. Longer keys add their length, up to MaxKeyLen.
type Limiter struct {
	interval int64 // nanoseconds per token
	span     int64 // Burst intervals: how far ahead of now a bucket may run
	seed     maphash.Seed
	mask     uint64 // shards-1; the number of shards is a power of two
	shards   []shard
}

// shard is one part of the table: a map from key to a slot in entries,
// and the slots in a doubly-linked list from most to least recently used.
type shard struct {
	mu      sync.Mutex
	base    time.Time // the first now seen; instants are kept relative to it
	started bool
	index   map[string]int32
	entries []entry
	head    int32 // most recently used, or -1
	tail    int32 // least recently used, or -1
	max     int   // slots this shard may hold

	allowed, limited, evicted uint64

	_ [64]byte // keeps neighbouring shards' locks off one cache line
}

type entry struct {
	key string
	// tat is when the bucket would be full again (its theoretical arrival
	// time), in nanoseconds after the shard's base: a bucket holds
	// (span - (tat - now)) / interval tokens.
	tat        int64
	prev, next int32
}

// New returns a Limiter. It panics when o.Rate is outside [MinRate,
// MaxRate] (or NaN): ParseRate and config validation keep it within.
func New(o Options) *Limiter {
	if !(o.Rate >= MinRate && o.Rate <= MaxRate) {
		panic(fmt.Sprintf("ratelimit: rate %v outside [%v, %v]", o.Rate, MinRate, MaxRate))
	}
	burst := o.Burst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(o.Rate)))
	}
	maxKeys := o.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	maxKeys = min(maxKeys, math.MaxInt32)

	interval := max(1, int64(math.Round(1e9/o.Rate)))
	span := maxSpan
	if int64(burst) <= maxSpan/interval {
		span = int64(burst) * interval
	}
	// The span is at least one interval, so a key not in the table (a full
	// bucket) always gets its first token.
	span = max(span, interval)

	n := 1
	for n < maxShards && maxKeys/(n*2) >= minKeysPerShard {
		n *= 2
	}
	l := &Limiter{
		interval: interval,
		span:     span,
		seed:     maphash.MakeSeed(),
		mask:     uint64(n - 1),
		shards:   make([]shard, n),
	}
	for i := range l.shards {
		s := &l.shards[i]
		s.max = maxKeys / n
		if i < maxKeys%n {
			s.max++
		}
		s.index = make(map[string]int32)
		s.head, s.tail = -1, -1
	}
	return l
}

// Allow takes a token from key's bucket at now. When there is none, ok is
// false and retryAfter is the exact time until the next token is due (a
// caller writing Retry-After rounds it up to whole seconds, at least one).
// A refused request takes nothing but still counts as use of the key for
// eviction, so a client being refused keeps its empty bucket.
//
// now comes from the caller; instants that go backwards a little (two
// goroutines reading the clock in one order and calling in the other)
// refill nothing and are otherwise harmless.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	hashed := false
	if len(key) > MaxKeyLen {
		sum := sha256.Sum256([]byte(key))
		key, hashed = string(sum[:]), true
	}
	s := &l.shards[0]
	if l.mask != 0 {
		s = &l.shards[maphash.String(l.seed, key)&l.mask]
	}

	s.mu.Lock()
	if !s.started {
		s.base, s.started = now, true
	}
	t := int64(now.Sub(s.base))
	i, found := s.index[key]
	tat := t
	if found {
		tat = max(s.entries[i].tat, t)
	}
	next := tat + l.interval
	if next-t > l.span {
		s.limited++
		s.touch(i) // found: a key not in the table has a full bucket
		s.mu.Unlock()
		return false, time.Duration(next - t - l.span)
	}
	if found {
		s.entries[i].tat = next
		s.touch(i)
	} else {
		if !hashed {
			// The caller's key may point into a larger buffer (a request
			// head); the table keeps only the key's own bytes.
			key = strings.Clone(key)
		}
		s.insert(key, next)
	}
	s.allowed++
	s.mu.Unlock()
	return true, 0
}

// Len is the number of keys in the table.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += len(s.index)
		s.mu.Unlock()
	}
	return n
}

// Stats are the counts since New.
func (l *Limiter) Stats() Stats {
	var st Stats
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		st.Allowed += s.allowed
		st.Limited += s.limited
		st.Evicted += s.evicted
		s.mu.Unlock()
	}
	return st
}

// insert adds key, taking the least recently used key's slot when the
// shard is full.
func (s *shard) insert(key string, tat int64) {
	var i int32
	if len(s.entries) < s.max {
		i = int32(len(s.entries))
		if len(s.entries) == cap(s.entries) {
			// Grow as append would, but never past the shard's bound: a
			// full table is the steady state, and append's slack there
			// would be kept for good.
			grown := make([]entry, len(s.entries), min(s.max, max(16, 2*cap(s.entries))))
			copy(grown, s.entries)
			s.entries = grown
		}
		s.entries = s.entries[:i+1]
	} else {
		i = s.tail
		s.unlink(i)
		delete(s.index, s.entries[i].key)
		s.evicted++
	}
	s.entries[i] = entry{key: key, tat: tat, prev: -1, next: -1}
	s.index[key] = i
	s.pushFront(i)
}

// touch makes entry i the most recently used.
func (s *shard) touch(i int32) {
	if s.head == i {
		return
	}
	s.unlink(i)
	s.pushFront(i)
}

func (s *shard) unlink(i int32) {
	e := &s.entries[i]
	if e.prev >= 0 {
		s.entries[e.prev].next = e.next
	} else {
		s.head = e.next
	}
	if e.next >= 0 {
		s.entries[e.next].prev = e.prev
	} else {
		s.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (s *shard) pushFront(i int32) {
	e := &s.entries[i]
	e.prev, e.next = -1, s.head
	if s.head >= 0 {
		s.entries[s.head].prev = i
	}
	s.head = i
	if s.tail < 0 {
		s.tail = i
	}
}

// ParseRate reads a rate as config writes it: a positive number of tokens
// and a unit, "10/s", "600/m", "1.5/h". It returns tokens a second.
func ParseRate(s string) (float64, error) {
	num, unit, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("rate %q: want a number and a unit, as in 10/s, 600/m or 100/h", s)
	}
	var per float64
	switch unit {
	case "s":
		per = 1
	case "m":
		per = 60
	case "h":
		per = 3600
	default:
		return 0, fmt.Errorf("rate %q: unit %q is not s, m or h", s, unit)
	}
	if !isDecimal(num) {
		return 0, fmt.Errorf("rate %q: %q is not a decimal number", s, num)
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("rate %q: %w", s, err)
	}
	if n <= 0 {
		return 0, fmt.Errorf("rate %q: must be more than zero", s)
	}
	r := n / per
	if r < MinRate || r > MaxRate {
		return 0, fmt.Errorf("rate %q: outside one a year to 1e9 a second", s)
	}
	return r, nil
}

// isDecimal reports whether s is digits with at most one point among or
// after them: what ParseFloat accepts beyond that (exponents, hex, inf,
// underscores, signs) is not a rate anyone means.
func isDecimal(s string) bool {
	digits, points := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			digits++
		case c == '.':
			points++
		default:
			return false
		}
	}
	return digits > 0 && points <= 1
}
