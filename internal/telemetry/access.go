package telemetry

import (
	"strconv"
	"time"
)

// AccessEntry is one proxied request as access.log records it. The gateway
// fills one per request; AccessLog.Log does not keep it, so it can be pooled.
type AccessEntry struct {
	// Time is when the request arrived; zero means "now" to Log.
	Time time.Time
	// RequestID is the X-Request-Id the request carried or was given.
	RequestID string
	// TraceID is the W3C trace id of the request's trace (32 lower-case
	// hex digits): its span's, when tracing is on, else the one the
	// client's traceparent names. Encoded as trace_id, only when
	// non-empty.
	TraceID  string
	App      string
	Instance string
	Method   string
	Host     string
	Path     string
	Status   int
	// Bytes is the response body size sent to the client.
	Bytes int64
	// Duration is the whole request; Upstream the time waiting on the app.
	// Both are encoded as milliseconds with three decimals.
	Duration time.Duration
	Upstream time.Duration
	// Held is how long the request waited for a ready instance; encoded
	// as held_ms, only when non-zero.
	Held time.Duration
	// Attempts is how many instances were tried.
	Attempts int
	// Cause is the gatehouse cause, "" for a plain app response.
	Cause string
	// RetriedCauses are the causes of the failed attempts that were retried;
	// omitted from the line when empty.
	RetriedCauses []string
	ConnReused    bool
	// Client is the client address.
	Client string
	// Detail is free text (e.g. the error behind Cause); omitted when empty.
	Detail string
	// AppPath is the path the app was sent when a route changed it
	// (strip_prefix, add_prefix, rewrite); Path stays the client's.
	// Encoded as app_path, only when non-empty.
	AppPath string
	// Rule names the route rule that answered or changed the request
	// ("deny 10.0.0.0/8", "rate_limit", "basic_auth", "forward_auth",
	// "redirect", "static"); only when non-empty.
	Rule string
	// User is who basic_auth or forward_auth established; only when
	// non-empty.
	User string
	// Encoding is the content encoding gatehouse compressed the answer
	// with, or of the precompressed file it served; only when non-empty.
	Encoding string
}

// AccessLog encodes AccessEntries as JSON lines into a LineWriter. Log does
// not allocate in steady state.
type AccessLog struct {
	w LineWriter
	// aw is w when it is an *AsyncWriter: Log then encodes straight into a
	// buffer it hands over, saving the copy Write would make.
	aw *AsyncWriter
}

// NewAccessLog returns an AccessLog writing to w. A nil w makes Log a no-op,
// so a gateway without an access log needs no special case.
func NewAccessLog(w LineWriter) *AccessLog {
	l := &AccessLog{w: w}
	if aw, ok := w.(*AsyncWriter); ok {
		if aw == nil {
			l.w = nil
		}
		l.aw = aw
	}
	return l
}

// Log writes e as one JSON line. It never blocks and never fails: a line the
// writer cannot take is dropped and counted by the writer.
func (l *AccessLog) Log(e *AccessEntry) {
	if l == nil || l.w == nil || e == nil {
		return
	}
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	bp := getLine()
	*bp = appendAccess(*bp, e, t)
	if l.aw != nil {
		l.aw.enqueue(bp) // ownership passes to the writer goroutine
		return
	}
	l.w.Write(*bp)
	putLine(bp)
}

// AppendAccessJSON appends e to dst as one JSON object followed by "\n" and
// returns the extended buffer. Keys, in order: time, request_id, trace_id
// (only when non-empty), app,
// instance, method, host, path, status, bytes, duration_ms, upstream_ms,
// held_ms (only when non-zero), attempts, cause, retried_causes (only when non-empty), conn_reused, client,
// detail, app_path, rule, user, encoding (each only when non-empty). It
// allocates only if dst must grow.
func AppendAccessJSON(dst []byte, e *AccessEntry) []byte {
	return appendAccess(dst, e, e.Time)
}

func appendAccess(dst []byte, e *AccessEntry, t time.Time) []byte {
	dst = append(dst, '{')
	dst = appendKey(dst, "time")
	dst = appendTime(dst, t)
	dst = appendKey(dst, "request_id")
	dst = appendString(dst, e.RequestID)
	if e.TraceID != "" {
		dst = appendKey(dst, "trace_id")
		dst = appendString(dst, e.TraceID)
	}
	dst = appendKey(dst, "app")
	dst = appendString(dst, e.App)
	dst = appendKey(dst, "instance")
	dst = appendString(dst, e.Instance)
	dst = appendKey(dst, "method")
	dst = appendString(dst, e.Method)
	dst = appendKey(dst, "host")
	dst = appendString(dst, e.Host)
	dst = appendKey(dst, "path")
	dst = appendString(dst, e.Path)
	dst = appendKey(dst, "status")
	dst = strconv.AppendInt(dst, int64(e.Status), 10)
	dst = appendKey(dst, "bytes")
	dst = strconv.AppendInt(dst, e.Bytes, 10)
	dst = appendKey(dst, "duration_ms")
	dst = appendMillis(dst, e.Duration)
	dst = appendKey(dst, "upstream_ms")
	dst = appendMillis(dst, e.Upstream)
	if e.Held > 0 {
		dst = appendKey(dst, "held_ms")
		dst = appendMillis(dst, e.Held)
	}
	dst = appendKey(dst, "attempts")
	dst = strconv.AppendInt(dst, int64(e.Attempts), 10)
	dst = appendKey(dst, "cause")
	dst = appendString(dst, e.Cause)
	if len(e.RetriedCauses) > 0 {
		dst = appendKey(dst, "retried_causes")
		dst = append(dst, '[')
		for i, c := range e.RetriedCauses {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, c)
		}
		dst = append(dst, ']')
	}
	dst = appendKey(dst, "conn_reused")
	dst = appendBool(dst, e.ConnReused)
	dst = appendKey(dst, "client")
	dst = appendString(dst, e.Client)
	if e.Detail != "" {
		dst = appendKey(dst, "detail")
		dst = appendString(dst, e.Detail)
	}
	for _, f := range [...]struct{ k, v string }{{"app_path", e.AppPath}, {"rule", e.Rule}, {"user", e.User}, {"encoding", e.Encoding}} {
		if f.v != "" {
			dst = appendKey(dst, f.k)
			dst = appendString(dst, f.v)
		}
	}
	return append(dst, '}', '\n')
}
