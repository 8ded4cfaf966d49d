package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/testutil/harness"
)

// Drains hold over HTTP/2 as over HTTP/1.1. A rolling reload replaces both
// instances while clients keep HTTP/2 connections busy with GETs and
// POSTs: none fails, though every instance they were served by is drained
// and stopped.
func TestRollingReloadUnderHTTP2Load(t *testing.T) {
	cfg, _ := harness.FaultApp(t, 2)
	roots := harness.TLS(t, cfg)
	g := harness.Start(t, cfg)
	g.WaitReady(t, "web", 2, 10*time.Second)

	var sent, failed atomic.Int64
	var lastErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			c := harness.H2Client(roots, 10*time.Second)
			defer c.CloseIdleConnections()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				if err := h2Request(c, g.SecureURL, (w+i)%2 == 0); err != nil {
					failed.Add(1)
					lastErr.Store(err)
				}
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := g.Srv.Reload(ctx, "", func(string, ...any) {})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d HTTP/2 requests failed during a rolling reload; last: %v", n, sent.Load(), lastErr.Load())
	}
	if len(g.Events("stop")) < 2 && len(g.Events("exit")) < 2 {
		t.Errorf("the reload replaced no instance: events %v", g.Events())
	}
	t.Logf("%d HTTP/2 requests during the reload, %d failed", sent.Load(), failed.Load())
}

// h2Request sends a GET, or a POST echoed back, and checks the answer
// came over HTTP/2 and whole.
func h2Request(c *http.Client, base string, post bool) error {
	var resp *http.Response
	var err error
	const body = "drain me not"
	if post {
		resp, err = c.Post(base+"/echo", "text/plain", strings.NewReader(body))
	} else {
		resp, err = c.Get(base + "/")
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return &statusError{resp.Status, resp.Header.Get("Gatehouse-Cause")}
	case resp.ProtoMajor != 2:
		return &statusError{"answered over " + resp.Proto, ""}
	case post && string(b) != body:
		return &statusError{"echo differs: " + string(b), ""}
	}
	return nil
}

type statusError struct{ status, cause string }

func (e *statusError) Error() string { return e.status + " " + e.cause }
