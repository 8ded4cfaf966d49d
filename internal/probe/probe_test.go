package probe_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/probe"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

var okRange = config.StatusRange{Min: 200, Max: 399}

// server answers /healthz with handler; the test closes it.
func server(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
}

func TestCheckDetail(t *testing.T) {
	refused := testutil.ClosedAddr(t)
	_, refusedPort, _ := net.SplitHostPort(refused)
	tests := []struct {
		name        string
		addr        string
		spec        probe.Spec
		wantOK      bool
		wantCode    int
		wantDetail  *regexp.Regexp
		wantRefused bool
		wantTimeout bool
		maxLatency  time.Duration
	}{
		{
			name:       "200 ok",
			addr:       server(t, status(200)),
			spec:       probe.Spec{Path: "/healthz", Timeout: time.Second, Status: okRange},
			wantOK:     true,
			wantCode:   200,
			wantDetail: regexp.MustCompile(`^200 OK in \d+ms$`),
		},
		{
			name:       "204 inside the range",
			addr:       server(t, status(204)),
			spec:       probe.Spec{Path: "/healthz", Timeout: time.Second, Status: okRange},
			wantOK:     true,
			wantCode:   204,
			wantDetail: regexp.MustCompile(`^204 No Content in \d+ms$`),
		},
		{
			name:       "403 rejected",
			addr:       server(t, status(403)),
			spec:       probe.Spec{Path: "/healthz", Timeout: time.Second, Status: okRange},
			wantCode:   403,
			wantDetail: regexp.MustCompile(`^403 Forbidden from GET /healthz$`),
		},
		{
			name:       "500 rejected",
			addr:       server(t, status(500)),
			spec:       probe.Spec{Path: "/healthz", Timeout: time.Second, Status: okRange},
			wantCode:   500,
			wantDetail: regexp.MustCompile(`^500 Internal Server Error from GET /healthz$`),
		},
		{
			name: "redirect to a login page is a result, not followed",
			addr: server(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/healthz" {
					t.Errorf("probe followed the redirect to %s", r.URL.Path)
				}
				http.Redirect(w, r, "/login", http.StatusFound)
			}),
			spec:       probe.Spec{Path: "/healthz", Timeout: time.Second, Status: config.StatusRange{Min: 200, Max: 299}},
			wantCode:   302,
			wantDetail: regexp.MustCompile(`^302 Found from GET /healthz \(redirect to /login\)$`),
		},
		{
			name:       "redirect inside the default range passes",
			addr:       server(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/login", http.StatusFound) }),
			spec:       probe.Spec{Path: "/healthz", Timeout: time.Second, Status: okRange},
			wantOK:     true,
			wantCode:   302,
			wantDetail: regexp.MustCompile(`^302 Found in \d+ms$`),
		},
		{
			name: "timeout",
			addr: server(t, func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			}),
			spec:        probe.Spec{Path: "/healthz", Timeout: 200 * time.Millisecond, Status: okRange},
			wantDetail:  regexp.MustCompile(`^timeout after 200ms on GET /healthz$`),
			wantTimeout: true,
			maxLatency:  2 * time.Second,
		},
		{
			name:        "connection refused",
			addr:        refused,
			spec:        probe.Spec{Path: "/healthz", Timeout: time.Second, Status: okRange},
			wantDetail:  regexp.MustCompile(`^connection refused on port ` + refusedPort + `$`),
			wantRefused: true,
		},
		{
			name:       "tcp connect ok",
			addr:       server(t, status(500)),
			spec:       probe.Spec{Timeout: time.Second},
			wantOK:     true,
			wantDetail: regexp.MustCompile(`^tcp connect ok in \d+ms$`),
		},
		{
			name:        "tcp connect refused",
			addr:        refused,
			spec:        probe.Spec{Timeout: time.Second},
			wantDetail:  regexp.MustCompile(`^connection refused on port ` + refusedPort + `$`),
			wantRefused: true,
		},
	}
	p := probe.New()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := p.Check(context.Background(), tc.addr, tc.spec)
			took := time.Since(start)
			if r.OK != tc.wantOK || r.Code != tc.wantCode || r.Refused != tc.wantRefused || r.TimedOut != tc.wantTimeout {
				t.Errorf("Check = {OK:%v Code:%d Refused:%v TimedOut:%v}, want {OK:%v Code:%d Refused:%v TimedOut:%v}",
					r.OK, r.Code, r.Refused, r.TimedOut, tc.wantOK, tc.wantCode, tc.wantRefused, tc.wantTimeout)
			}
			if !tc.wantDetail.MatchString(r.Detail) {
				t.Errorf("Detail = %q, want match for %q", r.Detail, tc.wantDetail)
			}
			if tc.maxLatency > 0 && took > tc.maxLatency {
				t.Errorf("Check took %v, want at most %v", took, tc.maxLatency)
			}
		})
	}
}

func TestCheckSendsProbeRequest(t *testing.T) {
	got := make(chan *http.Request, 1)
	addr := server(t, func(w http.ResponseWriter, r *http.Request) { got <- r })
	r := probe.New().Check(context.Background(), addr, probe.Spec{Path: "/ready?deep=1", Timeout: time.Second, Status: okRange})
	if !r.OK {
		t.Fatalf("Check = %+v", r)
	}
	req := <-got
	if req.Method != http.MethodGet || req.URL.RequestURI() != "/ready?deep=1" || req.Header.Get("User-Agent") != "gatehouse-probe" {
		t.Errorf("probe sent %s %s UA %q", req.Method, req.URL.RequestURI(), req.Header.Get("User-Agent"))
	}
}

func TestCheckLatencyInDetail(t *testing.T) {
	addr := server(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(120 * time.Millisecond) })
	r := probe.New().Check(context.Background(), addr, probe.Spec{Path: "/healthz", Timeout: 2 * time.Second, Status: okRange})
	ms, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(r.Detail, "200 OK in "), "ms"))
	if err != nil || ms < 100 || ms > 1500 {
		t.Errorf("Detail = %q, want 200 OK in ~120ms", r.Detail)
	}
	if r.Latency < 100*time.Millisecond {
		t.Errorf("Latency = %v", r.Latency)
	}
}

func TestSpecFor(t *testing.T) {
	h := config.NewApp("web").Health
	h.Path = "/healthz"
	s := probe.SpecFor(h)
	if s.Path != "/healthz" || s.Timeout != 2*time.Second || s.Status != okRange {
		t.Errorf("SpecFor(defaults) = %+v", s)
	}
}
