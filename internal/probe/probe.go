package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/upstreamtls"
)

// Spec is what to check.
type Spec struct {
	// Path is the HTTP path; empty means a TCP connect.
	Path    string
	Timeout time.Duration
	Status  config.StatusRange
	// TLS, when set (an external pool's upstream_tls:), makes the check
	// HTTPS, or without a path a TLS handshake, with the config the
	// gateway's connections use. A certificate that insecure_skip_verify
	// lets pass is still verified, and what is wrong with it noted in the
	// detail.
	TLS *config.UpstreamTLS
}

// SpecFor returns the probe spec of an app's health settings.
func SpecFor(h config.Health) Spec {
	return Spec{Path: h.Path, Timeout: h.Timeout.D(), Status: h.Status}
}

// Result is one probe's outcome.
type Result struct {
	OK bool
	// Code is the HTTP status, 0 for TCP checks and failures before one.
	Code    int
	Latency time.Duration
	// Detail says what happened, for status and diagnose.
	Detail string
	// Refused: nothing listened on the port.
	Refused bool
	// TimedOut: the probe did not finish within its timeout.
	TimedOut bool
}

// Prober runs probes. One Prober is shared by all instances.
type Prober struct {
	client *http.Client
}

// New returns a Prober. Probes use fresh connections so that a probe
// tests what a new client would see, and holds no idle connection.
func New() *Prober {
	tr := &http.Transport{
		DisableKeepAlives:  true,
		DisableCompression: true,
		Proxy:              nil,
	}
	return &Prober{client: &http.Client{
		Transport: tr,
		// A redirect is a result, not something to follow: a probe path
		// that redirects to a login page is the seeds' classic 502.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Check probes addr (host:port) once.
func (p *Prober) Check(ctx context.Context, addr string, s Spec) Result {
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	start := time.Now()
	var r Result
	var d *tlsDial
	if s.TLS != nil {
		d = newTLSDial(s.TLS, addr)
	}
	switch {
	case s.Path == "" && d != nil:
		r = d.check(ctx, addr)
	case s.Path == "":
		r = p.tcp(ctx, addr)
	default:
		r = p.http(ctx, addr, s, d)
	}
	r.Latency = time.Since(start)
	if r.OK {
		r.Detail = okDetail(r, d)
	}
	if !r.OK && (r.TimedOut || errors.Is(ctx.Err(), context.DeadlineExceeded)) {
		r.TimedOut = true
		r.Detail = "timeout after " + s.Timeout.String()
		if s.Path != "" {
			r.Detail += " on GET " + s.Path
		}
	}
	return r
}

func (p *Prober) tcp(ctx context.Context, addr string) Result {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return dialFailure(addr, err)
	}
	c.Close()
	return Result{OK: true}
}

func (p *Prober) http(ctx context.Context, addr string, s Spec, d *tlsDial) Result {
	scheme, client := "http://", p.client
	if d != nil {
		scheme, client = "https://", d.client(addr, p.client)
		defer client.CloseIdleConnections()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+addr+s.Path, nil)
	if err != nil {
		return Result{Detail: fmt.Sprintf("bad probe path %q: %v", s.Path, err)}
	}
	if d != nil && s.TLS.ServerName != "" {
		req.Host = s.TLS.ServerName // the virtual host the certificate is for
	}
	req.Header.Set("User-Agent", "gatehouse-probe")
	resp, err := client.Do(req)
	if err != nil {
		return dialFailure(addr, err)
	}
	// Drain a little so the app does not see a reset, then close.
	io.CopyN(io.Discard, resp.Body, 4096)
	resp.Body.Close()
	r := Result{Code: resp.StatusCode, OK: s.Status.Contains(resp.StatusCode)}
	if !r.OK {
		r.Detail = fmt.Sprintf("%s from GET %s", resp.Status, s.Path)
		if loc := resp.Header.Get("Location"); loc != "" {
			r.Detail += " (redirect to " + loc + ")"
		}
	}
	return r
}

func dialFailure(addr string, err error) Result {
	_, port, _ := net.SplitHostPort(addr)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return Result{Refused: true, Detail: "connection refused on port " + port}
	case upstreamtls.Classify(err) != upstreamtls.None:
		return Result{Detail: upstreamtls.Describe(err)}
	case errors.Is(err, context.DeadlineExceeded):
		return Result{TimedOut: true}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Result{TimedOut: true}
	}
	return Result{Detail: err.Error()}
}

func okDetail(r Result, d *tlsDial) string {
	ms := strconv.FormatInt(r.Latency.Milliseconds(), 10) + "ms"
	var detail string
	switch {
	case r.Code != 0:
		detail = strconv.Itoa(r.Code) + " " + http.StatusText(r.Code) + " in " + ms
	case d != nil:
		detail = "tls handshake ok in " + ms
	default:
		detail = "tcp connect ok in " + ms
	}
	if d != nil && d.unverified != nil {
		detail += " (insecure_skip_verify: " + upstreamtls.Describe(d.unverified) + ")"
	}
	return detail
}
