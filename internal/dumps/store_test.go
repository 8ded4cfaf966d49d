package dumps

import (
	"fmt"
	"os"
	"path/filepath"
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
		{"too large together, the newest kept", three, Limits{MaxSize: 50, MaxCount: 10}, []string{"a:max_size", "b:max_size"}},
		{"too old", three, Limits{MaxSize: 1000, MaxCount: 10, MaxAge: 150 * time.Minute}, []string{"a:max_age"}},
		{"age 0 keeps them", three, Limits{MaxSize: 1000, MaxCount: 10}, nil},
		{"the newest is kept however large", []Meta{dump("big", time.Minute, 500)}, Limits{MaxSize: 100, MaxCount: 10}, nil},
		{"an older large one goes", []Meta{dump("big", time.Hour, 500), dump("new", time.Minute, 500)}, Limits{MaxSize: 100, MaxCount: 10}, []string{"big:max_size"}},
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

// What a crash left is cleared at start, this pid's too (a container's
// gatehouse is pid 1 at every start); what a live process (an upgrade's
// predecessor) is writing, and a dump just being committed, are left
// alone.
func TestClearPartialsKeepsWhatIsStillBeingWritten(t *testing.T) {
	t.Parallel()
	s := store{dir: t.TempDir()}
	old := time.Now().Add(-2 * orphanAge)
	write := func(name string, mtime time.Time) {
		path := filepath.Join(s.dir, name)
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	dead := fmt.Sprintf("%s%d-", partialPrefix, 1<<22+7) // above pid_max's default
	live := fmt.Sprintf("%s1-", partialPrefix)           // pid 1 runs: a predecessor, say
	write(live+"live", time.Now())
	write(s.partial()+"mine", time.Now()) // this pid's, from an earlier run
	write(dead+"123", time.Now())
	if err := os.MkdirAll(filepath.Join(s.dir, dead+"scratch-1"), 0o700); err != nil {
		t.Fatal(err)
	}
	write(dead+"scratch-1/core.42", time.Now())
	write("web-1-core-1.core.gz", old)        // no meta, old: a crash's
	write("web-1-core-2.core.gz", time.Now()) // no meta yet: being committed
	write("web-1-stacks-3.txt", old)          // with its meta
	write("web-1-stacks-3.txt"+metaSuffix, old)
	s.clearPartials()
	var left []string
	ents, _ := os.ReadDir(s.dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	want := []string{live + "live", "web-1-core-2.core.gz", "web-1-stacks-3.txt", "web-1-stacks-3.txt.json"}
	if d := cmp.Diff(want, left); d != "" {
		t.Errorf("left (-want +got):\n%s", d)
	}
}
