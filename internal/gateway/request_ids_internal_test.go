package gateway

import (
	"math"
	"strconv"
	"testing"
)

func TestRequestIDCountersAreBase36(t *testing.T) {
	for _, n := range []uint64{0, 1, 35, 36, 37, 1295, 1296, 123456789, math.MaxUint64 - 1, math.MaxUint64} {
		t.Run(strconv.FormatUint(n, 10), func(t *testing.T) {
			prefix := []byte("ab-")
			got := string(appendBase36(prefix, n))
			if want := "ab-" + strconv.FormatUint(n, 36); got != want {
				t.Errorf("appendBase36(%d) = %q, want %q", n, got, want)
			}
		})
	}
}

func TestRequestIDsAreUniqueAndKept(t *testing.T) {
	ids := newRequestIDs()
	var slab []byte
	seen := map[string]bool{}
	var all []string
	for range 3 * idSlabSize / maxIDLen {
		id := ids.next(&slab)
		if seen[id] {
			t.Fatalf("id %q made twice", id)
		}
		seen[id] = true
		all = append(all, id)
	}
	for i, id := range all {
		if want := string(ids.prefix) + strconv.FormatUint(uint64(i+1), 36); id != want {
			t.Fatalf("id %d = %q, want %q: an id changed after it was made", i, id, want)
		}
	}
}
