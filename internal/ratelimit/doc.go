// Package ratelimit owns per-key request rates: a token bucket for each
// key (a client address, a header's value, a user name) in a table of
// bounded size. It imports nothing of gatehouse; the caller decides what
// a key is and what a refusal looks like (429, Retry-After, the access
// log), and hands in the clock.
//
// Each bucket holds Burst tokens and gains Rate tokens a second; a
// request takes one. A bucket is kept as a single instant (the generic
// cell rate algorithm's theoretical arrival time), so refill is exact
// integer arithmetic in nanoseconds and a key costs one int64 of state.
//
// The table holds at most MaxKeys keys. When it is full the least
// recently used key is dropped, and that key, when it comes back, starts
// again with a full bucket: eviction favours the client. MaxKeys must
// therefore exceed the number of clients active within a refill period
// by a margin, which is why the default is 100,000. The table is sharded
// by a seeded hash of the key with a mutex and an LRU list per shard, so
// the order of eviction is least recently used within a shard, and a
// shard may evict a little before the whole table is full.
package ratelimit
