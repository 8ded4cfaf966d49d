package dumps

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCapRemovesTheOldestPastEachLimit(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	dump := func(name string, age time.Duration, size int64) Meta {
		return Meta{Name: name, Created: now.Add(-age), Size: size}
	}
	three := []Meta{dump("a", 3*time.Hour, 100), dump("b", 2*time.Hour, 100), dump("c", time.Hour, 100)}
	for _, tc := range []struct {
		name  string
		dumps []Meta
		l     Limits
		want  []string // "name:why"
	}{
		{"within every limit", three, Limits{MaxSize: 300, MaxCount: 3}, nil},
		{"one too many", three, Limits{MaxSize: 1000, MaxCount: 2}, []string{"a:max_count"}},
		{"too large together", three, Limits{MaxSize: 150, MaxCount: 10}, []string{"a:max_size", "b:max_size"}},
		{"too old", three, Limits{MaxSize: 1000, MaxCount: 10, MaxAge: 150 * time.Minute}, []string{"a:max_age"}},
		{"age 0 keeps them", three, Limits{MaxSize: 1000, MaxCount: 10}, nil},
		{"a dump larger than the cap on its own", []Meta{dump("big", time.Minute, 500)}, Limits{MaxSize: 100, MaxCount: 10}, []string{"big:max_size"}},
		{"age first, then count", three, Limits{MaxSize: 1000, MaxCount: 1, MaxAge: 150 * time.Minute}, []string{"a:max_age", "b:max_count"}},
		{"none kept", nil, Limits{MaxSize: 1, MaxCount: 1}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, r := range overCap(tc.dumps, tc.l, now) {
				got = append(got, r.meta.Name+":"+r.why)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("removed (-want +got):\n%s", d)
			}
		})
	}
}

func TestDumpNamesStayInTheStore(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"web-1-core-20261204-093000.000.core.gz": true,
		"":                                       false,
		"../etc/passwd":                          false,
		"a/b":                                    false,
		`a\b`:                                    false,
		".partial-123":                           false,
		"..":                                     false,
		"web-1-stacks.txt.json":                  false,
		"web-1-stacks-1.txt":                     true,
		"web-1-heap.heapsnapshot":                true,
	} {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v, want %v", name, got, want)
		}
	}
}
