// Package access owns the allow and deny rules on a client's address:
// lists of CIDR ranges and single addresses compiled once, and the
// decision for one address with the entry that made it, for the access
// log. It imports nothing of gatehouse; which address is the client's
// (the peer, or what a trusted proxy says) is the caller's business, as
// is the answer to a refusal.
//
// Deny wins: an address in the deny list is refused whatever the allow
// list says or how specific its entry is, and the order of entries does
// not matter. That is what people expect a deny to mean, and it lets a
// deny entry carve a hole in an allowed range (allow 10.0.0.0/8, deny
// 10.6.0.0/16). When the allow list is not empty, an
// address in neither list is refused; when it is empty, everything not
// denied is allowed. Where entries nest, the most specific one that
// contains the address is the one named.
//
// The two families are apart: 0.0.0.0/0 is every IPv4 address and ::/0
// every IPv6 one. An IPv4-mapped IPv6 address (::ffff:10.1.2.3, as a
// dual-stack listener reports an IPv4 peer) is checked as IPv4, and an
// IPv4-mapped entry is read as the IPv4 range it maps.
//
// Each list is kept as sorted, non-overlapping ranges, each naming the
// most specific entry over it, so a check is a binary search whatever the
// length of the lists.
package access
