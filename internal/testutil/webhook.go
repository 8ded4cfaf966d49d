package testutil

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Webhook is a webhook receiver on loopback, as an alerts: receiver is
// in production: it answers 200 and keeps each request's body.
type Webhook struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
}

// NewWebhook starts a receiver, closed when the test ends.
func NewWebhook(t testing.TB) *Webhook {
	w := &Webhook{}
	w.Server = httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.mu.Lock()
		w.bodies = append(w.bodies, b)
		w.mu.Unlock()
	}))
	t.Cleanup(w.Close)
	return w
}

// Bodies are the bodies received so far, in arrival order.
func (w *Webhook) Bodies() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.bodies...)
}

// Notifications decodes the bodies received so far as JSON objects
// (gatehouse's json format).
func (w *Webhook) Notifications(t testing.TB) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, b := range w.Bodies() {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("webhook body %q: %v", b, err)
		}
		out = append(out, m)
	}
	return out
}

// Statuses are the statuses of alert's notifications (gatehouse's json
// format), in arrival order.
func (w *Webhook) Statuses(t testing.TB, alert string) []string {
	t.Helper()
	var out []string
	for _, n := range w.Notifications(t) {
		if n["alert"] == alert {
			s, _ := n["status"].(string)
			out = append(out, s)
		}
	}
	return out
}
