package cause_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/internal/cause"
	"github.com/gatehouse/gatehouse/internal/testutil"
)

// traced sends one request through tr and returns the Attempt that the
// gateway would classify: the real error and the progress httptrace saw.
func traced(t *testing.T, tr *http.Transport, method, url string, body string) cause.Attempt {
	t.Helper()
	var a cause.Attempt
	var mu sync.Mutex
	var wroteAt time.Time
	trace := &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) {
			mu.Lock()
			a.Progress.GotConn, a.Progress.Reused, a.IdleTime = true, i.Reused, i.IdleTime
			mu.Unlock()
		},
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			mu.Lock()
			if i.Err == nil {
				a.Progress.WroteRequest = true
				wroteAt = time.Now()
			}
			mu.Unlock()
		},
		GotFirstResponseByte: func() { mu.Lock(); a.Progress.GotFirstByte = true; mu.Unlock() },
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var rb io.Reader
	if body != "" {
		rb = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), method, url, rb)
	if err != nil {
		t.Fatal(err)
	}
	// Without GetBody net/http cannot replay the body on another
	// connection by itself: one RoundTrip is one attempt.
	req.GetBody = nil
	resp, err := tr.RoundTrip(req)
	mu.Lock()
	defer mu.Unlock()
	a.Err = err
	if !wroteAt.IsZero() {
		a.SinceWrite = time.Since(wroteAt)
	}
	if resp != nil {
		// Read it all before ctx ends, so the connection is pooled.
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return a
}

// readRequest reads one HTTP request (headers and body) from c.
func readRequest(br *bufio.Reader) error {
	req, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return err
}

// afterRequest is the failed attempt of a request to an app that reads
// it, then does then with the connection.
func afterRequest(t *testing.T, method, body string, then func(c net.Conn)) cause.Attempt {
	t.Helper()
	addr := testutil.ServeRaw(t, func(c net.Conn) {
		readRequest(bufio.NewReader(c))
		then(c)
	})
	return mustFail(t, traced(t, &http.Transport{}, method, "http://"+addr+"/", body))
}

func TestClassifyRealSockets(t *testing.T) {
	tests := []struct {
		name string
		run  func(t *testing.T) cause.Attempt
		want cause.Cause
	}{
		{"dial a closed port", func(t *testing.T) cause.Attempt {
			a := traced(t, &http.Transport{}, "GET", "http://"+testutil.ClosedAddr(t)+"/", "")
			if !errors.Is(a.Err, syscall.ECONNREFUSED) {
				t.Errorf("err = %v, want ECONNREFUSED", a.Err)
			}
			return a
		}, cause.ConnectRefused},
		{"connect timed out", func(t *testing.T) cause.Attempt {
			// A dialer with a tiny timeout gives the same timeout error a
			// blackholed address would, without leaving loopback.
			d := &net.Dialer{Timeout: time.Nanosecond}
			addr := testutil.ServeRaw(t, func(c net.Conn) { c.Close() })
			a := traced(t, &http.Transport{DialContext: d.DialContext}, "GET", "http://"+addr+"/", "")
			var ne net.Error
			if !errors.As(a.Err, &ne) || !ne.Timeout() {
				t.Errorf("err = %v, want a timeout", a.Err)
			}
			return a
		}, cause.ConnectTimeout},
		{"accepts, reads the request, closes", func(t *testing.T) cause.Attempt {
			return afterRequest(t, "POST", "hello", func(c net.Conn) { c.Close() })
		}, cause.UpstreamReset},
		{"accepts, reads the request, resets", func(t *testing.T) cause.Attempt {
			return afterRequest(t, "GET", "", func(c net.Conn) {
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			})
		}, cause.UpstreamReset},
		{"answers something that is not HTTP", func(t *testing.T) cause.Attempt {
			return afterRequest(t, "GET", "", func(c net.Conn) {
				io.WriteString(c, "NOT HTTP\r\n\r\n")
				c.Close()
			})
		}, cause.BadResponse},
		{"a reused connection the app closed while idle", func(t *testing.T) cause.Attempt {
			return staleAttemptInWindow(t, "POST")
		}, cause.StaleConnection},
		{"a reused connection cut off as the upload was sent", func(t *testing.T) cause.Attempt {
			// The app read the head and part of the body, then reset:
			// it had the request, as on a new connection.
			return cause.Attempt{
				Err:      realReset(t),
				Progress: cause.Progress{GotConn: true, Reused: true, WroteSome: true},
				IdleTime: time.Second,
			}
		}, cause.UpstreamReset},
		{"a reused connection reset right after the write", func(t *testing.T) cause.Attempt {
			// The app's idle close crossed our request on the wire: the
			// kernel answers the request's bytes with a reset.
			a := cause.Attempt{
				Err:        realReset(t),
				Progress:   cause.Progress{GotConn: true, Reused: true, WroteRequest: true},
				IdleTime:   time.Second,
				SinceWrite: 100 * time.Microsecond,
			}
			return a
		}, cause.StaleConnection},
		{"a reused connection reset long after the write", func(t *testing.T) cause.Attempt {
			// The app read the request and died handling it.
			return cause.Attempt{
				Err:        realReset(t),
				Progress:   cause.Progress{GotConn: true, Reused: true, WroteRequest: true},
				IdleTime:   time.Second,
				SinceWrite: 300 * time.Millisecond,
			}
		}, cause.UpstreamReset},
		{"request_timeout fired", func(t *testing.T) cause.Attempt {
			return cause.Attempt{Err: context.Canceled, TimedOut: true,
				Progress: cause.Progress{GotConn: true, WroteRequest: true}}
		}, cause.UpstreamTimeout},
		{"client went away", func(t *testing.T) cause.Attempt {
			return cause.Attempt{Err: context.Canceled, ClientGone: true,
				Progress: cause.Progress{GotConn: true, WroteRequest: true}}
		}, cause.ClientClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.run(t)
			if got := cause.Classify(a); got != tt.want {
				t.Errorf("Classify(%+v) = %q, want %q", a, got, tt.want)
			}
		})
	}
}

func mustFail(t *testing.T, a cause.Attempt) cause.Attempt {
	t.Helper()
	if a.Err == nil {
		t.Fatalf("request succeeded, want a failure")
	}
	return a
}

// staleAttemptInWindow makes the keep-alive race of staleAttempt until
// the close is seen within the classifier's window after the write. How
// long the two sides take to wake is the scheduler's to say: on a busy
// machine one race in several is seen late, and is rightly classified as
// a reset of a request the app may have read.
func staleAttemptInWindow(t *testing.T, method string) cause.Attempt {
	t.Helper()
	var a cause.Attempt
	for range 20 {
		if a = staleAttempt(t, method); a.SinceWrite <= cause.StaleMaxAfterWrite {
			return a
		}
	}
	t.Fatalf("20 races all seen more than %v after the write; the last: %+v", cause.StaleMaxAfterWrite, a)
	return a
}

// staleAttempt makes a real keep-alive race: the server answers one
// request with keep-alive, then closes the connection (FIN) just as the
// next request arrives on it, without reading it, which is what an app's
// idle timeout firing as the proxy reuses the connection looks like.
func staleAttempt(t *testing.T, method string) cause.Attempt {
	t.Helper()
	addr := testutil.ServeRaw(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		if readRequest(br) != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := br.Peek(1); err != nil {
			return
		}
		c.(*net.TCPConn).CloseWrite()
		time.Sleep(50 * time.Millisecond)
	})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	if a := traced(t, tr, method, "http://"+addr+"/", "first"); a.Err != nil {
		t.Fatalf("first request: %v", a.Err)
	}
	time.Sleep(60 * time.Millisecond) // idle long enough to count as stale
	a := traced(t, tr, method, "http://"+addr+"/", "second")
	if a.Err == nil {
		t.Fatalf("second request succeeded on a closed connection: %+v", a)
	}
	if !a.Progress.Reused {
		t.Fatalf("second request did not reuse the connection: %+v", a)
	}
	return a
}

// realReset returns the error a read gets when the peer resets the
// connection.
func realReset(t *testing.T) error {
	t.Helper()
	addr := testutil.ServeRaw(t, func(c net.Conn) {
		c.(*net.TCPConn).SetLinger(0)
		io.Copy(io.Discard, io.LimitReader(c, 1))
		c.Close()
	})
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after reset: %v, want ECONNRESET", err)
	}
	return err
}

func TestRetryRules(t *testing.T) {
	methods := []string{"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE", "POST", "PATCH"}
	idempotent := map[string]bool{"GET": true, "HEAD": true, "OPTIONS": true, "TRACE": true, "PUT": true, "DELETE": true}
	always := []cause.Cause{cause.ConnectRefused, cause.ConnectTimeout, cause.UpstreamTLS, cause.StaleConnection}
	never := []cause.Cause{cause.NoRoute, cause.NoReadyInstance, cause.QueueFull, cause.UpstreamTimeout,
		cause.BadResponse, cause.ResponseTruncated, cause.ClientClosed, cause.AppError, cause.None,
		cause.BadRequest, cause.HeadersTooLarge, cause.RequestTooLarge, cause.ClientTimeout, cause.UnsupportedProtocol}
	for _, m := range methods {
		for _, key := range []bool{false, true} {
			for _, c := range always {
				if !c.Retry().Allows(m, key) {
					t.Errorf("%s %s key=%v: not retried, want retried (the app never saw it)", c, m, key)
				}
			}
			for _, c := range never {
				if c.Retry().Allows(m, key) {
					t.Errorf("%s %s key=%v: retried, want never", c, m, key)
				}
			}
			want := idempotent[m] || key
			if got := cause.UpstreamReset.Retry().Allows(m, key); got != want {
				t.Errorf("upstream_reset %s key=%v: retried=%v, want %v", m, key, got, want)
			}
		}
	}
}

func TestStatuses(t *testing.T) {
	want := map[cause.Cause]int{
		cause.NoRoute: 404, cause.NoReadyInstance: 503, cause.QueueFull: 503, cause.ConnectRefused: 502,
		cause.ConnectTimeout: 502, cause.StaleConnection: 502, cause.UpstreamReset: 502, cause.UpstreamTimeout: 504,
		cause.BadResponse: 502, cause.ResponseTruncated: 0, cause.ClientClosed: 499, cause.AppError: 0,
		cause.BadRequest: 400, cause.HeadersTooLarge: 431, cause.RequestTooLarge: 413, cause.ClientTimeout: 408,
		cause.UnsupportedProtocol: 505, cause.UpstreamTLS: 502,
	}
	for c, s := range want {
		if got := c.Status(); got != s {
			t.Errorf("%s.Status() = %d, want %d", c, got, s)
		}
		if c.Hint() == "" {
			t.Errorf("%s has no hint", c)
		}
	}
}

// TestClientSideCauses: each cause of a request the client got wrong has
// its public name, a 4xx or 505 status, is never retried, and its hint
// names the config key that sets the limit it broke.
func TestClientSideCauses(t *testing.T) {
	tests := []struct {
		c       cause.Cause
		name    string
		status  int
		mention []string
	}{
		{cause.BadRequest, "bad_request", 400, []string{"malformed"}},
		{cause.HeadersTooLarge, "headers_too_large", 431, []string{"limits.request_head"}},
		{cause.RequestTooLarge, "request_too_large", 413, []string{"limits.request_body"}},
		{cause.ClientTimeout, "client_timeout", 408, []string{"limits.head_timeout", "limits.body_timeout"}},
		{cause.UnsupportedProtocol, "unsupported_protocol", 505, []string{"HTTP/2", "h2c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.c) != tt.name {
				t.Errorf("cause = %q, want %q", tt.c, tt.name)
			}
			if got := tt.c.Status(); got != tt.status {
				t.Errorf("Status() = %d, want %d", got, tt.status)
			}
			if tt.c.Retry() != cause.Never {
				t.Errorf("Retry() = %v, want Never", tt.c.Retry())
			}
			for _, m := range tt.mention {
				if !strings.Contains(tt.c.Hint(), m) {
					t.Errorf("Hint() = %q, want it to mention %q", tt.c.Hint(), m)
				}
			}
		})
	}
}

var sink cause.Cause

func BenchmarkClassify(b *testing.B) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	attempts := []cause.Attempt{
		{Err: refused},
		{Err: reset, Progress: cause.Progress{GotConn: true, Reused: true, WroteRequest: true}, IdleTime: time.Second, SinceWrite: time.Millisecond},
		{Err: reset, Progress: cause.Progress{GotConn: true, WroteRequest: true}},
		{Err: io.ErrUnexpectedEOF, Progress: cause.Progress{GotConn: true, WroteRequest: true, GotFirstByte: true}},
		{Err: context.Canceled, TimedOut: true},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		sink = cause.Classify(attempts[i%len(attempts)])
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, a := range attempts {
			sink = cause.Classify(a)
		}
	}); n != 0 {
		b.Errorf("Classify allocates %v times per run, want 0", n)
	}
}
