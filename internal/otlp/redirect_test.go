package otlp_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/gatehouse/gatehouse/internal/otlp"
)

// seenRequest is what a redirecting test server saw of one request.
type seenRequest struct {
	Method, Path string
	// Spans are the names of the spans in the request's body.
	Spans []string
	// Authorization and APIKey are the configured secret headers.
	Authorization, APIKey string
}

// redirectServer is an OTLP/HTTP server that answers POST /v1/traces
// with a redirect, and takes every other request (a POST's spans, or a
// GET) with a 200, keeping what it saw of each.
type redirectServer struct {
	srv *httptest.Server
	// status and location are the redirect's.
	status   int
	location string

	mu   sync.Mutex
	seen []seenRequest
}

func startRedirectServer(t *testing.T) *redirectServer {
	t.Helper()
	s := &redirectServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *redirectServer) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	seen := seenRequest{Method: r.Method, Path: r.URL.Path,
		Authorization: r.Header.Get("Authorization"), APIKey: r.Header.Get("X-Api-Key")}
	var req coltracepb.ExportTraceServiceRequest
	if proto.Unmarshal(b, &req) == nil {
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					seen.Spans = append(seen.Spans, sp.GetName())
				}
			}
		}
	}
	s.mu.Lock()
	s.seen = append(s.seen, seen)
	status, location := s.status, s.location
	s.mu.Unlock()
	if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" && status != 0 {
		http.Redirect(w, r, location, status)
		return
	}
	if r.Method == http.MethodPost {
		// OTLP's answer: an empty ExportTraceServiceResponse.
		w.Header().Set("Content-Type", "application/x-protobuf")
		return
	}
	// A GET, as a 301, 302 or 303 would make of the POST: a page that
	// is no receiver's (a login page).
	w.Header().Set("Content-Type", "text/html")
	io.WriteString(w, "<html>log in</html>")
}

func (s *redirectServer) redirect(status int, location string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.location = status, location
}

func (s *redirectServer) requests() []seenRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seenRequest(nil), s.seen...)
}

// TestRedirects: an OTLP/HTTP receiver that answers a redirect has the
// export follow it only when it keeps the POST and its body (307, 308)
// and goes to the same origin, and then within a few hops. Any other is
// the export's refusal, not retried: a 301, 302 or 303 would lose the
// spans to a GET that answers 200, and another origin (another port or
// host) would be given the configured headers, secrets among them.
func TestRedirects(t *testing.T) {
	headers := map[string]string{"Authorization": "Bearer s3cret", "x-api-key": "k3y"}
	// post is a request of the exporter's, to path.
	post := func(path string) seenRequest {
		return seenRequest{Method: http.MethodPost, Path: path, Spans: []string{"GET /orders"},
			Authorization: "Bearer s3cret", APIKey: "k3y"}
	}
	const (
		sameOrigin = iota
		otherPort  // the same host
		otherHost  // the same address, by another name
	)
	tests := []struct {
		name   string
		status int
		to     int    // where the redirect goes
		path   string // its path
		// refused: the export ends in the redirect's status, not
		// retried; else the spans are delivered.
		refused bool
		// wantOrigin is the requests the receiver is to see; the other
		// server (another port or host) is to see none.
		wantOrigin []seenRequest
	}{
		{
			name: "301 is a refusal", status: http.StatusMovedPermanently, to: sameOrigin, path: "/login",
			refused:    true,
			wantOrigin: []seenRequest{post("/v1/traces")},
		},
		{
			name: "302 is a refusal", status: http.StatusFound, to: sameOrigin, path: "/login",
			refused:    true,
			wantOrigin: []seenRequest{post("/v1/traces")},
		},
		{
			name: "303 is a refusal", status: http.StatusSeeOther, to: sameOrigin, path: "/login",
			refused:    true,
			wantOrigin: []seenRequest{post("/v1/traces")},
		},
		{
			name: "302 to another host is a refusal", status: http.StatusFound, to: otherHost, path: "/login",
			refused:    true,
			wantOrigin: []seenRequest{post("/v1/traces")},
		},
		{
			name: "307 to the same origin is followed", status: http.StatusTemporaryRedirect, to: sameOrigin, path: "/moved/v1/traces",
			wantOrigin: []seenRequest{post("/v1/traces"), post("/moved/v1/traces")},
		},
		{
			name: "308 to the same origin is followed", status: http.StatusPermanentRedirect, to: sameOrigin, path: "/moved/v1/traces",
			wantOrigin: []seenRequest{post("/v1/traces"), post("/moved/v1/traces")},
		},
		{
			name: "307 to another port is a refusal", status: http.StatusTemporaryRedirect, to: otherPort, path: "/v1/traces",
			refused:    true,
			wantOrigin: []seenRequest{post("/v1/traces")},
		},
		{
			name: "308 to another port is a refusal", status: http.StatusPermanentRedirect, to: otherPort, path: "/v1/traces",
			refused:    true,
			wantOrigin: []seenRequest{post("/v1/traces")},
		},
		{
			name: "307 to another host is a refusal", status: http.StatusTemporaryRedirect, to: otherHost, path: "/v1/traces",
			refused:    true,
			wantOrigin: []seenRequest{post("/v1/traces")},
		},
		{
			// The request and the three redirects followed, then the
			// last redirect is the refusal.
			name: "a 307 loop is followed three times, then a refusal", status: http.StatusTemporaryRedirect, to: sameOrigin, path: "/v1/traces",
			refused: true,
			wantOrigin: []seenRequest{
				post("/v1/traces"), post("/v1/traces"), post("/v1/traces"), post("/v1/traces"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			origin, other := startRedirectServer(t), startRedirectServer(t)
			location := tt.path
			switch tt.to {
			case otherPort:
				location = other.srv.URL + tt.path
			case otherHost:
				// The exporter reaches the receiver as 127.0.0.1.
				location = strings.Replace(other.srv.URL, "127.0.0.1", "localhost", 1) + tt.path
			}
			origin.redirect(tt.status, location)
			x := newExporter(t, otlp.Options{Protocol: otlp.HTTP, Endpoint: origin.srv.URL, Headers: headers})
			_, err := export(x, 10*time.Second, oneSpan())
			if !tt.refused {
				if err != nil {
					t.Errorf("ExportSpans: %v", err)
				}
			} else if se := errorAs(t, err, &otlp.StatusError{Protocol: otlp.HTTP, HTTPStatus: tt.status}); se.Retryable() {
				t.Errorf("%v: Retryable() = true, want false", se)
			}
			if diff := cmp.Diff(tt.wantOrigin, origin.requests()); diff != "" {
				t.Errorf("the receiver's requests (-want +got):\n%s", diff)
			}
			if got := other.requests(); len(got) != 0 {
				t.Errorf("the other origin had requests %+v, want none (nor the export's headers)", got)
			}
		})
	}
}
