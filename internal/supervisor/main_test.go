package supervisor

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/gatehouse/gatehouse/internal/pool"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// TestMain fails the package's tests, internal and external, if the
// supervisor ever sets a state along an edge that pool's transition table
// does not have: every lifecycle the tests drive (start, crash, back-off,
// restart, reload, scale, recycle, idle unload, shutdown, upstreams) is
// thereby checked against it.
func TestMain(m *testing.M) {
	var mu sync.Mutex
	var illegal []string
	restore := pool.SetIllegalTransitionFunc(func(id string, from, to pool.State) {
		mu.Lock()
		defer mu.Unlock()
		illegal = append(illegal, fmt.Sprintf("%s: %s → %s", id, from, to))
	})
	code := m.Run()
	restore()
	if len(illegal) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d state transitions not in pool's table:\n", len(illegal))
		for _, s := range illegal {
			fmt.Fprintln(os.Stderr, "  "+s)
		}
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	testutil.RemoveBinaries()
	os.Exit(code)
}
