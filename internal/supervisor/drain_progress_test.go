package supervisor_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
	"github.com/gatehouse/gatehouse/internal/testutil"
	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// A recycle's progress, and the drain event, say how many requests the
// old instance drains, in words that agree with the number.
func TestDrainProgressCountsOneRequest(t *testing.T) {
	g := startWeb(t, 1, nil)
	a := webApp(t, g)
	c := harness.Client(15 * time.Second)
	defer c.CloseIdleConnections()
	// A request that hangs until its client goes, which it does once the
	// drain has been announced: the count is the one in flight then.
	reqCtx, endRequest := context.WithCancel(context.Background())
	defer endRequest()
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(reqCtx, http.MethodGet, g.URL+"/hang", nil)
		if resp, err := c.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	defer func() { endRequest(); <-done }()
	id := g.Instances("web")[0].ID
	testutil.WaitFor(t, 5*time.Second, "one request in flight", func() bool { return g.Instances("web")[0].Inflight == 1 })
	var mu sync.Mutex
	var lines []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Recycle(ctx, id, "test", func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		line := fmt.Sprintf(format, args...)
		lines = append(lines, line)
		if strings.Contains(line, "draining") {
			endRequest()
		}
	}); err != nil {
		t.Fatalf("recycle %s: %v", id, err)
	}
	want := id + ": draining 1 in-flight request, then stopping"
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(lines, want) {
		t.Errorf("progress %q; want the line %q", lines, want)
	}
	var drains []string
	for _, e := range g.Events(telemetry.EventDrain) {
		drains = append(drains, e.Detail)
	}
	if wantEv := "out of rotation; waiting for 1 in-flight request"; !slices.Contains(drains, wantEv) {
		t.Errorf("drain events %q; want one %q", drains, wantEv)
	}
}
