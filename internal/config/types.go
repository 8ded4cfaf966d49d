package config

import "time"

// Config is the whole gatehouse.yaml: its top-level keys. An absent key
// means the default its field states; Default fills the defaults in before
// decoding, so that a key written explicitly (even as 0) can be validated.
type Config struct {
	// Listen is the public listener address. Default ":8080".
	Listen string `yaml:"listen" secret:"false"`
	// Admin is the admin API, dashboard and /metrics address.
	// Default "127.0.0.1:9901". A non-loopback address requires AdminToken.
	Admin string `yaml:"admin" secret:"false"`
	// AdminToken guards the admin API when it is not on loopback. Empty means
	// none; the environment variable GATEHOUSE_ADMIN_TOKEN overrides it.
	// A secret (see SecretTag).
	AdminToken string `yaml:"admin_token" secret:"true"`
	// DataDir holds access.log, events.log and logs/. Default ".gatehouse",
	// relative to the config file's directory.
	DataDir string `yaml:"data_dir" secret:"false"`
	// SampleInterval is how often process statistics (memory, CPU,
	// sockets) of every instance are read. Default 5s.
	SampleInterval Duration `yaml:"sample_interval" secret:"false"`
	// Limits bounds what clients may send and how long they may take, for
	// every listener. An app may override some of them (AppLimits).
	Limits Limits `yaml:"limits" secret:"false"`
	// TLS adds an HTTPS listener; nil (absent) means plain HTTP only.
	TLS *TLS `yaml:"tls" secret:"false"`
	// H2C lets the plain listener accept HTTP/2 with prior knowledge
	// (h2c), for a trusted load balancer in front. Default false: such a
	// client is told in HTTP/2 that h2c is off.
	H2C bool `yaml:"h2c" secret:"false"`
	// TrustedProxies are the peers (CIDRs or addresses) whose
	// X-Forwarded-For and X-Forwarded-Proto are kept and appended to, and
	// who may send a PROXY protocol header. Default none: those headers
	// are replaced with what gatehouse itself sees.
	TrustedProxies []string `yaml:"trusted_proxies" secret:"false"`
	// ProxyProtocol makes the public listeners read a PROXY protocol
	// (v1 or v2) header from trusted_proxies peers, as an L4 load balancer
	// in front sends. Default false.
	ProxyProtocol bool `yaml:"proxy_protocol" secret:"false"`
	// ShutdownDelay is how long gatehouse keeps serving after SIGTERM
	// with /readyz already failing, before it stops accepting and drains:
	// the time a load balancer or Kubernetes needs to stop sending it
	// requests (the endpoint-removal race). Default 0: drain at once.
	ShutdownDelay Duration `yaml:"shutdown_delay" secret:"false"`
	// HealthPrefix, if set, also serves /livez and /readyz on the public
	// listeners under this path ("/.gatehouse" serves
	// /.gatehouse/livez), ahead of every route. Default "": only on the
	// admin listener.
	HealthPrefix string `yaml:"health_prefix" secret:"false"`
	// LogFormat is the format of gatehouse's own lines on the run
	// terminal (standard error: its messages and the instances'
	// lifecycle events): "text" (default, "" or absent), one human line
	// each, "15:04:05 WHO WHAT key=value"; or "json", one log/slog JSON
	// object each (time, level, msg, attributes), and the instances'
	// output on standard output as JSON objects too (time, app,
	// instance, stream, line).
	LogFormat string `yaml:"log_format" secret:"false"`
	// AccessLog is where the access log (one JSON line per request)
	// goes: "" (default, absent) is data_dir/access.log; "stdout" is
	// gatehouse's standard output, for a container runtime to collect;
	// "off" writes none; anything else is a file path, relative to
	// data_dir. Only data_dir/access.log is read by diagnose. An explicit
	// "" is an error.
	AccessLog string `yaml:"access_log" secret:"false"`
	// LogFiles sets the rotation (max_size, max_files) and retention
	// (max_age) of the instances' output files and of the access log
	// file. Defaults: 100MB, 5 files, 14 days (see LogFiles).
	LogFiles LogFiles `yaml:"log_files" secret:"false"`
	// Apps by name; a name is [a-z0-9_-]+ and becomes the instance id prefix.
	Apps map[string]*App `yaml:"apps" secret:"false"`
	// Alerts sends webhook notifications when an episode begins and ends
	// (its receivers and thresholds are keys of their own, each with its
	// default). nil (absent) means none.
	Alerts *Alerts `yaml:"alerts" secret:"false"`
	// Tracing exports a span for every request and every attempt on an
	// instance over OTLP, in the trace the client's traceparent names
	// (see Tracing). nil (absent) means none.
	Tracing *Tracing `yaml:"tracing" secret:"false"`
	// Dumps keeps the process dumps (gatehouse dump, auto_heal's action
	// dump) under data_dir/dumps within a size, count and age (see
	// Dumps). Defaults: 4GiB, 20 dumps, 7 days.
	Dumps Dumps `yaml:"dumps" secret:"false"`

	// File is the path the config was read from ("" when built from a
	// command line or Procfile).
	File string `yaml:"-" secret:"false"`
	// Order lists app names in the order the file declares them.
	Order []string `yaml:"-" secret:"false"`

	// pos is the line of each key path Parse read, so that Preflight's
	// problems name lines as Parse's do; nil for a config not parsed.
	pos positions `secret:"false"`
}

// App is one supervised web app (Command) or external pool (Upstreams).
type App struct {
	// Name is the key under apps:, filled by the loader.
	Name string `yaml:"-" secret:"false"`
	// Command runs each instance: a list (argv) or a string run with sh -c.
	// Required, unless the app has upstreams instead; no default.
	Command Command `yaml:"command" secret:"false"`
	// Dir is the working directory, relative to the config file. Default ".".
	Dir string `yaml:"dir" secret:"false"`
	// Env is added to gatehouse's own environment for each instance.
	// Default none. Its values are secret by their names (see
	// RedactValue).
	Env map[string]string `yaml:"env" secret:"env"`
	// Instances is how many processes to run: 1 to 256 (gatehouse scale
	// too). Default 1; 0 is an error.
	Instances int `yaml:"instances" secret:"false"`
	// MinReady is how many ready instances (or members, for an external
	// pool) the app needs for gatehouse's /readyz to pass. For an app with
	// a command it is capped at the instances the app is meant to run (so
	// a stopped or idle-unloaded app needs none). nil (absent) means 1 for
	// an app with a command and 0 for an external pool; 0 means the app
	// never holds readiness back.
	MinReady *int `yaml:"min_ready" secret:"false"`
	// Upstreams, instead of a command, makes an external pool of host:port
	// addresses, probed and balanced like instances. "https://host[:port]"
	// is short for host:port (port 443 by default) with UpstreamTLS (its
	// defaults, when absent); then every entry must say https://. Validate
	// leaves host:port. "dns://NAME:PORT" makes every A and AAAA record of
	// NAME a member on PORT, and "dns+srv://_service._proto.NAME" every
	// SRV record's target and port; both are looked up again as their TTL
	// says (see DNS), and may be mixed with host:port entries. A host:port
	// entry with a host name is one member, dialed by that name. Each
	// upstream is listed once: a repeat (in any case, port or scheme) is
	// refused, as it would double its share of the requests.
	Upstreams []string `yaml:"upstreams" secret:"false"`
	// UpstreamTLS speaks HTTPS to the upstreams and their probes; nil
	// (absent) means plain HTTP. External pools only. It is how members
	// found in DNS are spoken to over TLS (they have no https:// form).
	UpstreamTLS *UpstreamTLS `yaml:"upstream_tls" secret:"false"`
	// DNS sets how dns:// and dns+srv:// upstreams are looked up; nil
	// (absent) means its defaults, which Validate fills in for an app with
	// such entries. External pools with DNS entries only.
	DNS *DNS `yaml:"dns" secret:"false"`
	// Affinity keeps a client on one instance with a cookie while that
	// instance is ready (ARR affinity). Default false.
	Affinity bool `yaml:"affinity" secret:"false"`
	// AffinityCookie names the affinity cookie. Default "ARRAffinity".
	AffinityCookie string `yaml:"affinity_cookie" secret:"false"`
	// Routes say which requests are the app's: each is "host/path-prefix",
	// "/path-prefix" or "host/", or a block (see Route) that adds path
	// changes, a redirect, static files or its own edge keys. Default
	// ["/"] when there is a single app.
	Routes []Route `yaml:"routes" secret:"false"`
	// RequestHeaders changes the request's header fields before the app
	// sees it. nil (absent) means none.
	RequestHeaders *HeaderOps `yaml:"request_headers" secret:"false"`
	// ResponseHeaders changes the answer's header fields before the
	// client sees them (gatehouse's own answers included). nil (absent)
	// means none.
	ResponseHeaders *HeaderOps `yaml:"response_headers" secret:"false"`
	// SecurityHeaders adds Strict-Transport-Security (over HTTPS, one
	// year), X-Content-Type-Options: nosniff, Referrer-Policy:
	// strict-origin-when-cross-origin and X-Frame-Options: SAMEORIGIN to
	// every answer: true adds each the app did not send, "force" replaces
	// the app's own; false, or absent, adds none.
	SecurityHeaders string `yaml:"security_headers" secret:"false"`
	// Allow, when not empty, admits only clients whose address (as
	// trusted_proxies establishes it) is in one of these CIDRs or
	// addresses; others get 403 access_denied. gatehouse's health paths
	// and ACME's challenge path are not subject to it. No default.
	Allow []string `yaml:"allow" secret:"false"`
	// Deny refuses clients in these CIDRs or addresses with 403
	// access_denied, whatever allow says. No default.
	Deny []string `yaml:"deny" secret:"false"`
	// RateLimit limits each client's request rate; past it, 429
	// rate_limited with Retry-After. nil (absent) means no limit.
	RateLimit *RequestRateLimit `yaml:"rate_limit" secret:"false"`
	// BasicAuth asks for a user name and password. nil (absent) means
	// none.
	BasicAuth *BasicAuth `yaml:"basic_auth" secret:"false"`
	// ForwardAuth asks an auth service about each request first. nil
	// (absent) means none.
	ForwardAuth *ForwardAuth `yaml:"forward_auth" secret:"false"`
	// Compress compresses the app's answers for clients that accept it.
	// nil (absent) means answers are sent as the app wrote them.
	Compress *Compress `yaml:"compress" secret:"false"`
	// Health is the startup and liveness probe. Absent, it is a TCP
	// connect to the instance's port with the defaults of its keys.
	Health Health `yaml:"health" secret:"false"`
	// StartTimeout bounds how long an instance may take to become ready.
	// Default 230s.
	StartTimeout Duration `yaml:"start_timeout" secret:"false"`
	// StopTimeout bounds draining, and the wait between SIGTERM and
	// SIGKILL. Default 30s.
	StopTimeout Duration `yaml:"stop_timeout" secret:"false"`
	// RequestTimeout bounds the wait for response headers; past it the
	// client gets 504 upstream_timeout. Default 230s.
	RequestTimeout Duration `yaml:"request_timeout" secret:"false"`
	// HoldTimeout is how long a request waits for a ready instance before
	// 503 no_ready_instance. Default 30s; 0 means do not hold.
	HoldTimeout Duration `yaml:"hold_timeout" secret:"false"`
	// IdleTimeout stops all instances after no request for this long, and
	// the next request starts them. The time runs from the last request's
	// end or an instance's readiness, whichever is later; an app with an
	// instance still starting is not stopped. Default 0: always on; a
	// reload to 0 starts an app unloaded for idleness.
	IdleTimeout Duration `yaml:"idle_timeout" secret:"false"`
	// QueueSize caps how many requests may be held at once; past it they
	// get 503 queue_full. Default 1000.
	QueueSize int `yaml:"queue_size" secret:"false"`
	// MaxInflight caps how many requests one instance is sent at once (an
	// app that serves one request at a time: 1); beyond it requests wait
	// in the hold queue, in arrival order, within queue_size and
	// hold_timeout. Unit: requests per instance. Default 0: no limit.
	// Reloadable.
	MaxInflight int `yaml:"max_inflight" secret:"false"`
	// MaxAttempts bounds attempts per request, retries included. Default 3;
	// 1 disables retries.
	MaxAttempts int `yaml:"max_attempts" secret:"false"`
	// RetryBodyLimit is the largest request body read whole before an
	// instance is asked, so that the request can be replayed on another
	// instance, when it is larger than limits.request_buffer (which reads
	// bodies whole for the same reason). Default 1MiB; larger bodies
	// stream and are not retried once sent.
	RetryBodyLimit Size `yaml:"retry_body_limit" secret:"false"`
	// UpstreamIdleTimeout closes idle upstream keep-alive connections before
	// the app would. Default 4s (Node closes after 5s); an app's
	// "Keep-Alive: timeout=N" response header lowers it per connection,
	// and an idle connection the app is seen to have closed (a second or
	// more after its answer) lowers it for the instance.
	UpstreamIdleTimeout Duration `yaml:"upstream_idle_timeout" secret:"false"`
	// MemoryLimit is the instance memory budget used by the proactive
	// auto-heal rule, which recycles an instance whose resident memory
	// (RSS) stays above 90% of it for 30s. Unit: bytes, written as a
	// size. Default 0: no limit.
	MemoryLimit Size `yaml:"memory_limit" secret:"false"`
	// AutoHeal configures triggers and actions; nil (absent) means only
	// the proactive rules: memory_limit, and slow requests (80% or more
	// of at least 5 requests in 2 minutes taking 200s or more).
	AutoHeal *AutoHeal `yaml:"auto_heal" secret:"false"`
	// Autoscale changes the instance count between its min and max on
	// measured load (see Autoscale); nil (absent) means the count stays
	// what instances and gatehouse scale make it. Apps with a command
	// only.
	Autoscale *Autoscale `yaml:"autoscale" secret:"false"`
	// Limits overrides some of the top-level limits for this app's
	// requests. After Parse every key holds its effective value: a key the
	// app leaves out takes the top-level one.
	Limits AppLimits `yaml:"limits" secret:"false"`
	// Upgrades are the protocols a client may switch a connection to this
	// app to with Upgrade (RFC 9110 §7.8), by protocol name: matched
	// without regard to case or to a "/version" the client adds (see
	// AllowsUpgrade); an Upgrade request for any other protocol is
	// refused. Default ["websocket"]; an explicit [] forwards no upgrade
	// at all, while "upgrades:" with no value keeps the default. "h2c" is
	// an error: it is never forwarded, since a client could then speak
	// HTTP/2 to the app past every route and limit. Each entry is an HTTP
	// token, without a version.
	Upgrades []string `yaml:"upgrades" secret:"false"`
}

// External reports whether the app is a pool of upstream addresses.
func (a *App) External() bool { return len(a.Upstreams) > 0 }

// ReadyNeeded is MinReady with its default: how many ready instances
// the app needs for gatehouse to be ready, before the cap.
func (a *App) ReadyNeeded() int {
	switch {
	case a.MinReady != nil:
		return *a.MinReady
	case a.External():
		return 0
	default:
		return 1
	}
}

// Limits is the top-level limits: block: how large a request or response
// head may be, how long a client may take, and how many clients are served
// at once. Sizes are bytes, written "64KiB"; durations are written "30s".
type Limits struct {
	// RequestHead is the largest request head (request line and header
	// fields) accepted; past it the client gets 431 headers_too_large.
	// Default 64KiB; from 1KiB to 16MiB, so 0 is an error.
	RequestHead Size `yaml:"request_head" secret:"false"`
	// ResponseHead is the largest response head (status line and header
	// fields) an app may send; past it the client gets 502 bad_response.
	// Default 64KiB; from 1KiB to 16MiB, so 0 is an error. Apps may
	// override it.
	ResponseHead Size `yaml:"response_head" secret:"false"`
	// RequestBody is the largest request body accepted; past it the client
	// gets 413 request_too_large. Default 0: unlimited. Apps may override
	// it.
	RequestBody Size `yaml:"request_body" secret:"false"`
	// MaxConnections is how many client connections each listener serves
	// at once; past it the kept-alive connection idle longest is closed to
	// make room, or, with none idle, new connections wait in the kernel's
	// accept queue.
	// Default 0: automatic, half the process's open-file limit
	// (RLIMIT_NOFILE) and at least 64, so that upstream connections and
	// log files always have descriptors left (see Config.MaxConnections).
	// Negative is an error.
	MaxConnections int `yaml:"max_connections" secret:"false"`
	// MaxConnectionsPerIP is how many of those one client address may
	// hold at once, so that a single peer cannot take every slot: past
	// it, that address's connection idle longest is closed to make room,
	// or, with all of them at work, the new connection is closed at once.
	// trusted_proxies are not bounded (their connections carry many
	// clients). Default 0: automatic, a quarter of max_connections (see
	// Config.MaxConnectionsPerIP); set it to max_connections for no
	// bound. Negative is an error.
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip" secret:"false"`
	// HeadTimeout bounds the time from a request's first byte to the end
	// of its head; past it the client gets 408 client_timeout and the
	// connection is closed. Default 30s; 0 is an error.
	HeadTimeout Duration `yaml:"head_timeout" secret:"false"`
	// BodyTimeout is the longest wait between two reads of a request body
	// (nginx's client_body_timeout), not a bound on the whole body; past it
	// the client gets 408 client_timeout. Default 60s; 0 is an error. Apps
	// may override it.
	BodyTimeout Duration `yaml:"body_timeout" secret:"false"`
	// KeepaliveTimeout closes a client's keep-alive connection after it
	// has been idle this long. Default 2m; 0 is an error.
	KeepaliveTimeout Duration `yaml:"keepalive_timeout" secret:"false"`
	// SendTimeout bounds each write of a response to a client (nginx's
	// send_timeout): a client that stops reading its answer is closed
	// after it (over TLS, and on an HTTP/2 connection, after up to half
	// as long again), at once and without a TLS close_notify, which it
	// would not read, and gives back its connection slot. Over TLS it
	// also bounds what TLS writes of its own, such as the reply to a
	// client's key update, from when that write starts. Default 60s; 0
	// is invalid.
	SendTimeout Duration `yaml:"send_timeout" secret:"false"`
	// TunnelIdleTimeout closes an upgraded connection (a WebSocket, or
	// another protocol the app switched to with 101) once it has been
	// silent in both directions this long (nginx's proxy_read_timeout on
	// a tunnel, HAProxy's timeout tunnel); it also bounds each write to a
	// side that stopped reading. An open tunnel keeps its instance's
	// max_inflight slot until it ends (HAProxy counts tunnels against
	// maxconn the same way), so this bound is what gives an abandoned
	// tunnel's slot back. Default 60s; 0 is an error. Apps may override
	// it.
	TunnelIdleTimeout Duration `yaml:"tunnel_idle_timeout" secret:"false"`
	// ResponseBuffer is the longest answer read whole from the app before
	// it is written to the client, so that the app's connection and its
	// instance's max_inflight slot are free while a slow client reads it
	// (nginx's proxy_buffering); a longer answer, and an event stream,
	// streams. Held in memory within BufferMemory and ConnectionBuffer,
	// in a temporary file beyond. Default 64KiB; 0: every answer streams.
	// Apps may override it.
	ResponseBuffer Size `yaml:"response_buffer" secret:"false"`
	// RequestBuffer is the longest request body read whole from the
	// client before an instance is asked (nginx's proxy_request_buffering),
	// so that a slow upload holds no instance; such a body may also be
	// sent again to another instance. A longer body streams. Held in
	// memory within BufferMemory and ConnectionBuffer, in a temporary
	// file beyond. Default 16MiB; 0: bodies stream (those up to the app's
	// retry_body_limit are still read whole). Apps may override it.
	RequestBuffer Size `yaml:"request_buffer" secret:"false"`
	// BufferMemory bounds the memory all buffered answers and request
	// bodies hold at once; beyond it they go to temporary files.
	// Default 64MiB; 0: always files.
	BufferMemory Size `yaml:"buffer_memory" secret:"false"`
	// BufferDisk bounds the temporary files all buffered answers and
	// request bodies hold at once (on a tmpfs /tmp, that is memory too);
	// past it a body streams after what was held, holding its instance
	// as it did before buffering. Default 1GiB; 0: no files.
	BufferDisk Size `yaml:"buffer_disk" secret:"false"`
	// ConnectionBuffer bounds the memory one client connection's buffered
	// answers and request bodies hold at once (an HTTP/2 connection's
	// streams share it), so that one client cannot take all of
	// BufferMemory; beyond it they go to temporary files. Default 1MiB;
	// 0 means the default.
	ConnectionBuffer Size `yaml:"connection_buffer" secret:"false"`
}

// AppLimits is an app's limits: block, the limits that may differ per app.
// Each key means what the Limits key of the same name means, with the same
// bounds; a key left out takes the top-level value, whether that was
// written in the file or is the default.
type AppLimits struct {
	// RequestBody: see Limits.RequestBody. 0 means unlimited.
	RequestBody Size `yaml:"request_body" secret:"false"`
	// ResponseHead: see Limits.ResponseHead. From 1KiB to 16MiB.
	ResponseHead Size `yaml:"response_head" secret:"false"`
	// BodyTimeout: see Limits.BodyTimeout. 0 is an error.
	BodyTimeout Duration `yaml:"body_timeout" secret:"false"`
	// TunnelIdleTimeout: see Limits.TunnelIdleTimeout. 0 is an error.
	TunnelIdleTimeout Duration `yaml:"tunnel_idle_timeout" secret:"false"`
	// ResponseBuffer: see Limits.ResponseBuffer. 0: answers stream.
	ResponseBuffer Size `yaml:"response_buffer" secret:"false"`
	// RequestBuffer: see Limits.RequestBuffer. 0: bodies stream.
	RequestBuffer Size `yaml:"request_buffer" secret:"false"`
}

// App returns the part of l an app inherits: its AppLimits when the app
// overrides none of them.
func (l Limits) App() AppLimits {
	return AppLimits{RequestBody: l.RequestBody, ResponseHead: l.ResponseHead, BodyTimeout: l.BodyTimeout,
		TunnelIdleTimeout: l.TunnelIdleTimeout, ResponseBuffer: l.ResponseBuffer, RequestBuffer: l.RequestBuffer}
}

// Health is an app's probe. Without Path the check is a TCP connect.
type Health struct {
	// Path is the HTTP GET path, e.g. /healthz. Empty means TCP connect.
	Path string `yaml:"path" secret:"false"`
	// Interval between probes of a ready instance. Default 5s.
	Interval Duration `yaml:"interval" secret:"false"`
	// Timeout of one probe. Default 2s.
	Timeout Duration `yaml:"timeout" secret:"false"`
	// UnhealthyThreshold consecutive failures take an instance out of
	// rotation. Default 3.
	UnhealthyThreshold int `yaml:"unhealthy_threshold" secret:"false"`
	// HealthyThreshold consecutive passes bring it back. Default 1.
	HealthyThreshold int `yaml:"healthy_threshold" secret:"false"`
	// Status is the accepted status range. Default "200-399".
	Status StatusRange `yaml:"status" secret:"false"`
	// RecycleAfter recycles an instance whose probes have kept it out of
	// rotation this long (unhealthy; not one still starting), as
	// auto-heal recycles, whatever auto_heal's action: its replacement is
	// ready before it drains, and an auto_heal event of trigger unhealthy
	// says why. Each such recycle counts against auto_heal.max_recycles
	// (default 5 per 1h, with or without an auto_heal block), so that a
	// dependency every probe checks, down, does not restart the app for as
	// long as it is down. Not for an external pool, whose upstreams have
	// no process. Default 1h, as on the seed platform; 0 turns it off.
	RecycleAfter Duration `yaml:"recycle_after" secret:"false"`
}

// AutoHeal is the per-app auto-heal block.
type AutoHeal struct {
	// MinProcessExecutionTime: no trigger acts on an instance younger
	// than this. Default 0: triggers act from an instance's start.
	MinProcessExecutionTime Duration `yaml:"min_process_execution_time" secret:"false"`
	// MaxRecycles caps recycles per period; past it auto-heal pauses for
	// the app. Default 5 per 1h.
	MaxRecycles *RateLimit `yaml:"max_recycles" secret:"false"`
	// Triggers are the conditions, counted per instance, that make
	// auto-heal act. Default none: only the proactive rules act.
	Triggers Triggers `yaml:"triggers" secret:"false"`
	// Action is recycle (default), log_event, custom, or dump: a dump
	// of the instance (dump_kind) taken while it is out of rotation,
	// then a recycle.
	Action string `yaml:"action" secret:"false"`
	// DumpKind is the dump action dump takes: core (default), stacks or
	// heap (Node only). Only used with action: dump.
	DumpKind string `yaml:"dump_kind" secret:"false"`
	// Custom is the command for action: custom, with {app} {instance}
	// {pid} {port} placeholders. Required with action: custom, and only
	// then; no default.
	Custom Command `yaml:"custom" secret:"false"`
}

// RateLimit is Count events per Per.
type RateLimit struct {
	// Count is how many events are allowed in each Per. Default (in
	// max_recycles) 5; at least 1.
	Count int `yaml:"count" secret:"false"`
	// Per is the period Count is counted over. Default (in max_recycles)
	// 1h; 0 is an error.
	Per Duration `yaml:"per" secret:"false"`
}

// Triggers are counted per instance over sliding intervals.
type Triggers struct {
	// Memory fires on an instance's private memory. Default none.
	Memory *MemoryTrigger `yaml:"memory" secret:"false"`
	// Requests fires on an instance's request count. Default none.
	Requests *RequestsTrigger `yaml:"requests" secret:"false"`
	// SlowRequests fire on an instance's slow requests, each rule
	// counted on its own. Default none.
	SlowRequests []SlowTrigger `yaml:"slow_requests" secret:"false"`
	// StatusCodes fire on an instance's answers with given statuses,
	// each rule counted on its own. Default none.
	StatusCodes []StatusTrigger `yaml:"status_codes" secret:"false"`
}

// MemoryTrigger fires when an instance's private bytes exceed the limit.
type MemoryTrigger struct {
	// PrivateBytes is the limit on an instance's private memory (what no
	// other process shares: private clean and dirty pages), sampled every
	// sample_interval. Unit: bytes, written as a size. Required, > 0; no
	// default.
	PrivateBytes Size `yaml:"private_bytes" secret:"false"`
}

// RequestsTrigger fires after Count requests within Interval.
type RequestsTrigger struct {
	// Count is how many requests to one instance fire the trigger.
	// Required, at least 1; no default.
	Count int `yaml:"count" secret:"false"`
	// Interval is the sliding window the requests are counted in.
	// Required, > 0; no default.
	Interval Duration `yaml:"interval" secret:"false"`
}

// SlowTrigger fires after Count requests slower than TimeTaken within
// Interval, optionally only for paths under Path.
type SlowTrigger struct {
	// TimeTaken is how long a request must take to count as slow.
	// Required, > 0; no default.
	TimeTaken Duration `yaml:"time_taken" secret:"false"`
	// Count is how many slow requests fire the trigger. Required, at
	// least 1; no default.
	Count int `yaml:"count" secret:"false"`
	// Interval is the sliding window the slow requests are counted in.
	// Required, > 0; no default.
	Interval Duration `yaml:"interval" secret:"false"`
	// Path counts only requests whose path starts with it ("/api/"),
	// read as routes read it: without path parameters (from ";", so
	// "/api;jsessionid=1/x" counts under "/api/") and with repeated
	// slashes merged. Written without a ";". Default "": every request.
	Path string `yaml:"path" secret:"false"`
}

// StatusTrigger fires after Count responses in Status within Interval.
type StatusTrigger struct {
	// Status is the statuses counted, a range ("500-599") or one code.
	// Required; no default.
	Status StatusRange `yaml:"status" secret:"false"`
	// Count is how many such answers fire the trigger. Required, at
	// least 1; no default.
	Count int `yaml:"count" secret:"false"`
	// Interval is the sliding window the answers are counted in.
	// Required, > 0; no default.
	Interval Duration `yaml:"interval" secret:"false"`
	// Path counts only requests whose path starts with it ("/api/"),
	// read as routes read it: without path parameters (from ";", so
	// "/api;jsessionid=1/x" counts under "/api/") and with repeated
	// slashes merged. Written without a ";". Default "": every request.
	Path string `yaml:"path" secret:"false"`
}

// Duration is a length of time written as a number with a unit: "30s",
// "1m30s", "250ms" (units ns, us, ms, s, m, h). "0" alone is zero; any
// other number without a unit is an error, as it could mean seconds or
// milliseconds.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Size is a byte count written as "512MiB", "1MB", "1.5GiB" or "1024":
// KB, MB and GB are powers of 1000, KiB, MiB and GiB powers of 1024, and
// a number alone is bytes; units are case-insensitive.
type Size int64

// Command is an argv: a list of strings, run as it is (no shell), or a
// single string, run with sh -c (it becomes ["sh", "-c", string]).
type Command []string

// StatusRange is an inclusive range of HTTP status codes, "200-399" or "500".
type StatusRange struct {
	Min int `secret:"false"`
	Max int `secret:"false"`
}

// Contains reports whether code is in the range.
func (r StatusRange) Contains(code int) bool { return code >= r.Min && code <= r.Max }
