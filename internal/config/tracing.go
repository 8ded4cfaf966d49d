package config

import (
	"maps"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"github.com/gatehouse/gatehouse/internal/otlp"
)

// Tracing is the top-level tracing: block: a span for every request
// gatehouse serves and one for every attempt it makes on an instance,
// exported over OTLP to a collector or a tracing backend (Jaeger, Tempo,
// an OpenTelemetry collector), in the trace the client's traceparent
// names. nil (absent), or an empty endpoint, means no spans are made:
// the client's traceparent then reaches the app unchanged.
type Tracing struct {
	// Endpoint is where spans are exported. For protocol grpc,
	// host:port (plaintext, as a local collector or agent takes it,
	// e.g. 127.0.0.1:4317), or http://host:port, or https://host:port
	// for TLS. For protocol http, an http or https URL
	// (http://127.0.0.1:4318); without a path, spans go to /v1/traces.
	// Default "": tracing is off.
	Endpoint string `yaml:"endpoint" secret:"false"`
	// Protocol is OTLP's transport: grpc (default) or http
	// (http/protobuf).
	Protocol string `yaml:"protocol" secret:"false"`
	// SampleRatio is the share of new traces recorded and exported, from
	// 0 to 1. Default 1. A request whose traceparent says its trace is
	// sampled is recorded whatever the ratio, and one whose traceparent
	// says it is not is not: the decision of whoever began the trace
	// holds.
	SampleRatio float64 `yaml:"sample_ratio" secret:"false"`
	// Headers are sent with every export (an API key, an Authorization),
	// over those of OTEL_EXPORTER_OTLP_HEADERS. Their values are secrets;
	// their names are not. Those that frame the export itself
	// (Content-Type, TE, grpc-*, …) are refused.
	Headers map[string]string `yaml:"headers" secret:"true"`
	// ServiceName is the service.name resource attribute of gatehouse's
	// spans. Default "gatehouse".
	ServiceName string `yaml:"service_name" secret:"false"`
}

// Tracing protocols.
const (
	TracingGRPC = "grpc"
	TracingHTTP = "http"
)

var tracingProtocols = []string{TracingGRPC, TracingHTTP}

// NewTracing returns the defaults of a tracing: block that is present.
func NewTracing() *Tracing {
	return &Tracing{Protocol: TracingGRPC, SampleRatio: 1, ServiceName: "gatehouse"}
}

// On reports whether t exports spans: a block with an endpoint.
func (t *Tracing) On() bool { return t != nil && t.Endpoint != "" }

var tracingType = reflect.TypeFor[Tracing]()

// tracing checks the tracing: block.
func (v *validator) tracing(t *Tracing, path string) {
	if t == nil {
		return
	}
	if !slices.Contains(tracingProtocols, t.Protocol) {
		v.errorf(path+".protocol", "%q must be one of %s", t.Protocol, strings.Join(tracingProtocols, ", "))
	} else if t.Endpoint != "" {
		if why := badTracingEndpoint(t.Protocol, t.Endpoint); why != "" {
			v.errorf(path+".endpoint", "%q %s", t.Endpoint, why)
		}
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		v.errorf(path+".sample_ratio", "must be between 0 and 1 (a share of new traces), got %g", t.SampleRatio)
	}
	if t.ServiceName == "" {
		v.errorf(path+".service_name", "must not be empty")
	}
	seen := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(t.Headers)) {
		p := path + ".headers." + k
		other, dup := seen[strings.ToLower(k)]
		seen[strings.ToLower(k)] = k
		switch {
		case dup:
			v.errorf(p, "%q is the same header as %q (names are not case-sensitive)", k, other)
		case !isToken(k):
			v.errorf(p, "%q is not a valid header name", k)
		case otlp.FramingHeader(k):
			v.errorf(p, "%q is set by the exporter itself (it frames the export), so it cannot be configured", k)
		case strings.ContainsFunc(t.Headers[k], func(c rune) bool { return c < ' ' && c != '\t' || c == 0x7f }):
			v.errorf(p, "the value has a control character (a line break?), which no request can carry")
		}
	}
}

// badTracingEndpoint says what is wrong with endpoint for protocol
// (grpc or http); "" when nothing is.
func badTracingEndpoint(protocol, endpoint string) string {
	const notHTTP = "must be an http:// or https:// URL (e.g. http://127.0.0.1:4318)"
	if !strings.Contains(endpoint, "://") {
		if protocol != TracingGRPC {
			return notHTTP
		}
		if _, port, err := net.SplitHostPort(endpoint); err != nil || !validPort(port) || port == "0" {
			return "must be host:port (e.g. 127.0.0.1:4317), or an http:// or https:// URL"
		}
		return ""
	}
	u, err := url.Parse(endpoint)
	switch {
	case err != nil:
		return "does not parse as a URL"
	case u.Scheme != "http" && u.Scheme != "https":
		if protocol == TracingGRPC {
			return "must be host:port (e.g. 127.0.0.1:4317), or an http:// or https:// URL"
		}
		return notHTTP
	case u.Host == "":
		return "has no host"
	case u.User != nil:
		return "must not carry credentials: put them in tracing.headers"
	case protocol == TracingGRPC && u.Path != "" && u.Path != "/":
		return "must have no path: gRPC's is the service's own"
	case u.RawQuery != "" || u.Fragment != "":
		return "must have no query or fragment"
	}
	return ""
}
