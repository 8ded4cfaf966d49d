package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
)

// ForwardOptions configure a Forward.
type ForwardOptions struct {
	// URL is the auth service's endpoint (http:// or https://), asked
	// with a GET for every request.
	URL string
	// Timeout bounds one question, from dial to the end of the answer's
	// body; default 5s.
	Timeout time.Duration
	// CopyHeaders are copied from the auth service's 2xx answer onto the
	// request to the app (X-Auth-User, Remote-Groups, …). The client's
	// own copy of each is removed whatever the answer says, so that a
	// client cannot forge one the auth service did not set. The first
	// names the user.
	CopyHeaders []string
	// RequestHeaders are the client's headers sent to the auth service;
	// default all but the hop-by-hop ones, the body's framing
	// (Content-Length, Transfer-Encoding), Accept-Encoding and the
	// client's forwarding headers, which Check sets itself, and other
	// origin fields (X-Original-*; see dropHeaders).
	RequestHeaders []string
	// TLS configures connections to an https:// URL; nil: the system's
	// roots.
	TLS *tls.Config
}

// DefaultForwardTimeout is ForwardOptions.Timeout's default.
const DefaultForwardTimeout = 5 * time.Second

// maxDenialBody bounds the body of a denial relayed to the client: a
// sign-in page or an error message, not a download.
const maxDenialBody = 64 << 10

// Forward asks an auth service whether a request may pass. It keeps
// connections to the service alive between questions; Close lets them
// go. It is safe for concurrent use.
type Forward struct {
	url       *url.URL
	redacted  string
	timeout   time.Duration
	copy      []string // canonical
	request   []string // canonical; nil: all but dropHeaders
	transport *http.Transport
	client    *http.Client
}

// Decision is the auth service's answer to one Check.
type Decision struct {
	// Allowed: the service answered 2xx; the request goes on to the app.
	Allowed bool

	// When !Allowed: the answer to relay to the client as it is, status,
	// headers (Location and Set-Cookie among them) and body (at most
	// 64 KiB of it). The headers hold neither hop-by-hop headers nor
	// Content-Length: the body's length is len(Body).
	Status int
	Header http.Header
	Body   []byte

	// When Allowed: Copy holds every name of CopyHeaders, with the
	// values the answer gave it, or none when it gave none; Apply sets
	// them on the request to the app. User is the first value of the
	// first CopyHeaders name, for the access log and rate limits; "" when
	// there is none.
	Copy http.Header
	User string
	// SetCookie are the answer's Set-Cookie values, for the caller to
	// add to the app's answer: an auth service that refreshes its
	// session cookie on a 2xx (oauth2-proxy does) needs them to reach
	// the browser, as nginx setups relay them with auth_request_set and
	// Traefik with addAuthCookiesToResponse. Never set on the request to
	// the app.
	SetCookie []string
}

// Apply sets d.Copy on h, the header of the request to the app: each
// name's values from the auth service, and none of the client's.
func (d Decision) Apply(h http.Header) {
	for k, v := range d.Copy {
		h.Del(k)
		if len(v) > 0 {
			h[k] = append([]string(nil), v...)
		}
	}
}

// UnavailableError is an auth service that gave no answer: refused,
// unreachable, reset or too slow. The caller answers 503.
type UnavailableError struct {
	URL string // without its userinfo
	Err error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("auth service %s gave no answer: %v", e.URL, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// NewForward checks o and returns a Forward for its URL.
func NewForward(o ForwardOptions) (*Forward, error) {
	u, err := url.Parse(o.URL)
	if err != nil {
		return nil, fmt.Errorf("forward auth url: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("forward auth url %q: want http://HOST/… or https://HOST/…", u.Redacted())
	}
	f := &Forward{url: u, redacted: u.Redacted(), timeout: o.Timeout}
	if f.timeout <= 0 {
		f.timeout = DefaultForwardTimeout
	}
	if f.copy, err = canonicalNames("copy_headers", o.CopyHeaders); err != nil {
		return nil, err
	}
	if o.RequestHeaders != nil {
		if f.request, err = canonicalNames("request_headers", o.RequestHeaders); err != nil {
			return nil, err
		}
	}
	f.transport = &http.Transport{
		// The auth service is addressed directly, whatever HTTP_PROXY says.
		Proxy:               nil,
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     o.TLS.Clone(),
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		// The answer is relayed as the service sent it.
		DisableCompression: true,
	}
	f.client = &http.Client{
		Transport: f.transport,
		// A redirect is the service's answer for the client (a sign-in
		// page), not for us to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return f, nil
}

func canonicalNames(what string, names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !httpguts.ValidHeaderFieldName(n) {
			return nil, fmt.Errorf("forward auth %s: %q is not a header name", what, n)
		}
		out = append(out, textproto.CanonicalMIMEHeaderKey(n))
	}
	return out, nil
}

// Close closes the idle connections to the auth service. A Check after
// Close opens new ones.
func (f *Forward) Close() { f.transport.CloseIdleConnections() }

// dropHeaders are the client's headers never sent to the auth service by
// default: hop-by-hop (RFC 9110 7.6.1), the body's framing (the question
// has no body), Accept-Encoding (a relayed denial body is cut at a bound,
// which a compressed one does not survive), the forwarding headers,
// which Check sets from what the caller knows rather than from what the
// client claims, and the other fields an auth service may take the
// request's URL or client from (Authelia reads X-Original-URL before
// X-Forwarded-*; X-Original-* are dropped by prefix): a client's own
// would have the service judge another request than this one.
var dropHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true,
	"Proxy-Authenticate": true, "Proxy-Authorization": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Content-Length": true, "Accept-Encoding": true,
	"Forwarded": true, "X-Real-Ip": true,
	"X-Rewrite-Url": true, "True-Client-Ip": true, "X-Client-Ip": true, "Cf-Connecting-Ip": true,
}

// hopByHop are the headers of an answer that are not relayed.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length"}

// Origin is where a request came from and how, as the caller knows it
// from its trusted proxies rather than from what the client claims.
type Origin struct {
	// ClientIP is the client's address.
	ClientIP string
	// Scheme is "http" or "https": a trusted proxy's X-Forwarded-Proto,
	// else the connection's.
	Scheme string
	// Host is the host the client asked for: a trusted proxy's
	// X-Forwarded-Host, else the request's Host; "" for r.Host.
	Host string
}

// Check asks the auth service about r: a GET, never with r's body, with
// r's headers (see RequestHeaders) and X-Forwarded-Method, -Proto, -Host,
// -Uri and -For, and X-Real-Ip, from r and o. A 2xx allows r; any other
// answer, a redirect or a 5xx among them, is a denial to relay. No answer
// within Timeout, or none at all, is an *UnavailableError; when ctx ends
// first (the client went away) the error is ctx's.
func (f *Forward) Check(ctx context.Context, r *http.Request, o Origin) (Decision, error) {
	qctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	q, err := http.NewRequestWithContext(qctx, http.MethodGet, f.url.String(), nil)
	if err != nil {
		return Decision{}, fmt.Errorf("forward auth: %w", err)
	}
	f.questionHeader(q.Header, r, o)
	resp, err := f.client.Do(q)
	if err != nil {
		return Decision{}, f.noAnswer(ctx, err)
	}
	defer resp.Body.Close()

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Read a short body to its end so that the connection is kept.
		if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxDenialBody)); err != nil {
			return Decision{}, f.noAnswer(ctx, err)
		}
		d := Decision{Allowed: true, Copy: make(http.Header, len(f.copy)), SetCookie: resp.Header.Values("Set-Cookie")}
		for _, k := range f.copy {
			d.Copy[k] = resp.Header.Values(k)
		}
		if len(f.copy) > 0 && len(d.Copy[f.copy[0]]) > 0 {
			d.User = d.Copy[f.copy[0]][0]
		}
		return d, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDenialBody))
	if err != nil {
		return Decision{}, f.noAnswer(ctx, err)
	}
	h := resp.Header.Clone()
	for _, k := range resp.Header.Values("Connection") {
		for _, name := range strings.Split(k, ",") {
			h.Del(strings.TrimSpace(name))
		}
	}
	for _, k := range hopByHop {
		h.Del(k)
	}
	return Decision{Status: resp.StatusCode, Header: h, Body: body}, nil
}

// noAnswer classifies err, the failure of a question asked under ctx.
func (f *Forward) noAnswer(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("forward auth: %w", context.Cause(ctx))
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within %v: %w", f.timeout, err)
	}
	return &UnavailableError{URL: f.redacted, Err: err}
}

// questionHeader fills h, the header of the question about r.
func (f *Forward) questionHeader(h http.Header, r *http.Request, o Origin) {
	if f.request != nil {
		for _, k := range f.request {
			if v := r.Header.Values(k); len(v) > 0 {
				h[k] = append([]string(nil), v...)
			}
		}
	} else {
		// Headers named in Connection are hop-by-hop too.
		named := map[string]bool{}
		for _, v := range r.Header.Values("Connection") {
			for _, n := range strings.Split(v, ",") {
				named[textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(n))] = true
			}
		}
		for k, v := range r.Header {
			if dropHeaders[k] || named[k] || strings.HasPrefix(k, "X-Forwarded-") || strings.HasPrefix(k, "X-Original-") {
				continue
			}
			h[k] = append([]string(nil), v...)
		}
	}
	// The framing of a question without a body is the transport's.
	for _, k := range []string{"Connection", "Content-Length", "Transfer-Encoding", "Te", "Trailer", "Upgrade", "Host"} {
		h.Del(k)
	}
	host := o.Host
	if host == "" {
		host = r.Host
	}
	h.Set("X-Forwarded-Method", r.Method)
	h.Set("X-Forwarded-Proto", o.Scheme)
	h.Set("X-Forwarded-Host", host)
	h.Set("X-Forwarded-Uri", r.URL.RequestURI())
	h.Set("X-Forwarded-For", o.ClientIP)
	h.Set("X-Real-Ip", o.ClientIP)
}
