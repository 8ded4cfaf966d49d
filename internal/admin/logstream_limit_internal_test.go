package admin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// The log streams open at once are bounded below the admin listener's
// connections, so that followers cannot take every one of them from
// gatehouse status, the operations and the watchdog's check: one more
// is answered 503 at once, and one that ends gives its place back.
func TestLogStreamsOpenAtOnceAreBounded(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(NewHandler(Deps{Events: telemetry.NewEvents(nil, 0), Lines: telemetry.NewLines()}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	open := func(ctx context.Context) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/logstream", nil)
		if err != nil {
			return nil, err
		}
		return c.Do(req)
	}
	var cancels []context.CancelFunc
	defer func() {
		for _, cancel := range cancels {
			cancel()
		}
	}()
	for i := range maxLogStreams {
		sctx, scancel := context.WithCancel(ctx)
		cancels = append(cancels, scancel)
		resp, err := open(sctx)
		if err != nil {
			t.Fatalf("stream %d: %v", i+1, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: status %d, want 200", i+1, resp.StatusCode)
		}
	}
	resp, err := open(ctx)
	if err != nil {
		t.Fatalf("stream %d: %v", maxLogStreams+1, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("stream %d: status %d, want 503", maxLogStreams+1, resp.StatusCode)
	}
	// One follower leaves: its place is given back once its handler
	// has seen it go, which no event of the server's tells.
	cancels[0]()
	for {
		resp, err := open(ctx)
		if err != nil {
			t.Fatalf("a stream after one ended: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("a stream after one ended: status %d", resp.StatusCode)
		}
	}
}
