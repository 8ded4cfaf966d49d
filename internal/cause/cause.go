package cause

import "net/http"

// Cause names why gatehouse answered instead of the app, or why a response
// from the app is counted as a failure. The string values are public: they
// appear in the Gatehouse-Cause header, the access log and metrics.
type Cause string

// The causes of PRODUCT.md's table, and upstream_tls (an external pool's
// HTTPS upstream refused the handshake, or was refused).
const (
	None              Cause = ""
	NoRoute           Cause = "no_route"
	NoReadyInstance   Cause = "no_ready_instance"
	InstancesBusy     Cause = "instances_busy"
	QueueFull         Cause = "queue_full"
	ConnectRefused    Cause = "connect_refused"
	ConnectTimeout    Cause = "connect_timeout"
	UpstreamTLS       Cause = "upstream_tls"
	StaleConnection   Cause = "stale_connection"
	UpstreamReset     Cause = "upstream_reset"
	UpstreamTimeout   Cause = "upstream_timeout"
	BadResponse       Cause = "bad_response"
	ResponseTruncated Cause = "response_truncated"
	ClientClosed      Cause = "client_closed"
	AppError          Cause = "app_error"
)

// Causes on the client's side of the gateway: the request itself broke a
// rule or a limit before any instance was chosen, so no instance saw it
// and another could not answer it differently. None is retried.
const (
	BadRequest          Cause = "bad_request"
	HeadersTooLarge     Cause = "headers_too_large"
	RequestTooLarge     Cause = "request_too_large"
	ClientTimeout       Cause = "client_timeout"
	UnsupportedProtocol Cause = "unsupported_protocol"
	UpgradeRefused      Cause = "upgrade_refused"
)

// Causes of the rules a route applies before the app is asked (allow and
// deny, rate_limit, basic_auth, forward_auth). None is retried.
const (
	AccessDenied    Cause = "access_denied"
	RateLimited     Cause = "rate_limited"
	AuthRequired    Cause = "auth_required"
	AuthUnavailable Cause = "auth_unavailable"
)

// StatusClientClosed is logged for requests whose client went away (nginx's
// convention); it is never written to a client.
const StatusClientClosed = 499

// info is one row of the taxonomy.
type info struct {
	status int
	retry  Retry
	hint   string
}

var table = map[Cause]info{
	NoRoute:           {http.StatusNotFound, Never, "no route matches this host and path; check the routes: of your apps"},
	NoReadyInstance:   {http.StatusServiceUnavailable, Never, "no instance became ready in time; see `gatehouse status` for the probe detail"},
	QueueFull:         {http.StatusServiceUnavailable, Never, "too many requests are waiting for an instance; retry later or raise instances"},
	InstancesBusy:     {http.StatusServiceUnavailable, Never, BusyHint},
	ConnectRefused:    {http.StatusBadGateway, Always, "nothing is listening on the instance's port: it crashed, is still starting, or does not bind PORT"},
	ConnectTimeout:    {http.StatusBadGateway, Always, "the instance did not accept a TCP connection in time; it may be overloaded"},
	UpstreamTLS:       {http.StatusBadGateway, Always, "the TLS handshake with the upstream failed (its certificate, or the client certificate it wants); see `gatehouse status` for the probe detail"},
	StaleConnection:   {http.StatusBadGateway, Always, "the app closed a keep-alive connection just as it was reused"},
	UpstreamReset:     {http.StatusBadGateway, IfIdempotent, "the connection was closed after the request was sent; the app may have crashed"},
	UpstreamTimeout:   {http.StatusGatewayTimeout, Never, "the app sent no response headers within request_timeout"},
	BadResponse:       {http.StatusBadGateway, Never, "the app answered something that is not HTTP"},
	ResponseTruncated: {0, Never, "the response body was cut short"},
	ClientClosed:      {StatusClientClosed, Never, "the client went away before the response was complete"},
	AppError:          {0, Never, "the app answered with a 5xx status"},

	BadRequest:          {http.StatusBadRequest, Never, "the request is malformed (framing, header syntax or path); the client must fix it"},
	HeadersTooLarge:     {http.StatusRequestHeaderFieldsTooLarge, Never, "the request line and headers exceed limits.request_head; send fewer or smaller headers (often cookies) or raise the limit"},
	RequestTooLarge:     {http.StatusRequestEntityTooLarge, Never, "the request body exceeds limits.request_body (the app's own, if it sets one); send less or raise the limit"},
	ClientTimeout:       {http.StatusRequestTimeout, Never, "the client sent its request too slowly: the head took longer than limits.head_timeout, or the body paused longer than limits.body_timeout"},
	UnsupportedProtocol: {http.StatusHTTPVersionNotSupported, Never, "the client spoke a protocol gatehouse does not serve on this listener (HTTP/2 prior knowledge without h2c)"},
	UpgradeRefused:      {http.StatusBadRequest, Never, "the client asked to switch to a protocol the app's upgrades: does not list (websocket by default); h2c is never forwarded"},

	AccessDenied:    {http.StatusForbidden, Never, "the client's address is refused by the route's deny list, or is not in its allow list; behind a proxy, check trusted_proxies"},
	RateLimited:     {http.StatusTooManyRequests, Never, "the client sent more requests than the route's rate_limit allows; wait for Retry-After, or raise rate or burst"},
	AuthRequired:    {http.StatusUnauthorized, Never, "the route asks for a user name and password (basic_auth), and none or a wrong one was sent"},
	AuthUnavailable: {http.StatusServiceUnavailable, Never, "the forward_auth service could not be reached or did not answer within its timeout; check that it runs at forward_auth.url"},
}

// Status is the HTTP status gatehouse answers with for c; 0 when the status
// came from the app or was already sent.
func (c Cause) Status() int { return table[c].status }

// Retry is the retry rule for c.
func (c Cause) Retry() Retry { return table[c].retry }

// Hint is a one-line, generic explanation a person can act on.
func (c Cause) Hint() string { return table[c].hint }

// Retry says when a failed attempt may be repeated on another instance.
type Retry uint8

const (
	// Never: the failure is final for this request.
	Never Retry = iota
	// Always: the app never saw the request, so any method may be retried.
	Always
	// IfIdempotent: the app may have seen the request.
	IfIdempotent
)

// Allows reports whether a request with the given method, and with or
// without an Idempotency-Key header, may be retried under rule r.
func (r Retry) Allows(method string, hasIdempotencyKey bool) bool {
	switch r {
	case Always:
		return true
	case IfIdempotent:
		return hasIdempotencyKey || Idempotent(method)
	}
	return false
}

// Idempotent reports whether method is idempotent by RFC 9110.
func Idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}
