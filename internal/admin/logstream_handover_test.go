package admin_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// Once a successor serves in gatehouse's place, the log stream ends
// saying so, at once (the successor reads the instances' output from
// then on), so that logs -f follows the successor's rather than waiting
// on a stream that no line comes to, or ending as if gatehouse stopped.
func TestLogStreamEndsSayingAHandover(t *testing.T) {
	t.Parallel()
	handedOver := make(chan struct{})
	close(handedOver)
	h := admin.NewHandler(admin.Deps{Events: telemetry.NewEvents(nil, 0), Lines: telemetry.NewLines(), HandedOver: handedOver})
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(w, httptest.NewRequest("GET", "http://127.0.0.1/api/logstream", nil))
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the log stream did not end within 30s of the handover")
	}
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200", w.Code)
	}
	want := "event: end\ndata: {\"reason\":\"" + admin.EndHandover + "\"}\n\n"
	if !strings.HasSuffix(w.Body.String(), want) {
		t.Errorf("stream %q, want it to end %q", w.Body, want)
	}
}
