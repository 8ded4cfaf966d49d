package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A tracing: block takes its defaults for what it leaves out, and each
// problem with its keys is reported on its line, naming the key; a
// header's value, a secret, is never quoted.
func TestTracing(t *testing.T) {
	const head = web + "tracing:\n"
	checkParses(t, []parseCase{
		{"grpc host:port", head + "  endpoint: 127.0.0.1:4317\n", nil},
		{"grpc URL", head + "  endpoint: https://otel.example.com:4317\n  headers: {x-api-key: s3cret}\n", nil},
		{"http", head + "  endpoint: http://127.0.0.1:4318\n  protocol: http\n  sample_ratio: 0.25\n", nil},
		{"http with a path", head + "  endpoint: https://tempo.example.com/otlp/v1/traces\n  protocol: http\n", nil},
		{"empty block: off", head + "  service_name: edge\n", nil},
		{"sample_ratio bounds", head + "  endpoint: 127.0.0.1:4317\n  sample_ratio: 0\n", nil},
		{"unknown protocol", head + "  endpoint: 127.0.0.1:4317\n  protocol: thrift\n",
			[]string{`g.yaml:6: tracing.protocol: "thrift" must be one of grpc, http`}},
		{"grpc without a port", head + "  endpoint: collector\n",
			[]string{`g.yaml:5: tracing.endpoint: "collector" must be host:port (e.g. 127.0.0.1:4317), or an http:// or https:// URL`}},
		{"grpc with a path", head + "  endpoint: http://127.0.0.1:4317/v1/traces\n",
			[]string{`g.yaml:5: tracing.endpoint: "http://127.0.0.1:4317/v1/traces" must have no path: gRPC's is the service's own`}},
		{"http without a scheme", head + "  endpoint: 127.0.0.1:4318\n  protocol: http\n",
			[]string{`g.yaml:5: tracing.endpoint: "127.0.0.1:4318" must be an http:// or https:// URL (e.g. http://127.0.0.1:4318)`}},
		{"http with credentials", head + "  endpoint: http://u:pw@127.0.0.1:4318\n  protocol: http\n",
			[]string{`g.yaml:5: tracing.endpoint: "http://u:REDACTED@127.0.0.1:4318" must not carry credentials: put them in tracing.headers`}},
		{"sample_ratio out of range", head + "  endpoint: 127.0.0.1:4317\n  sample_ratio: 1.5\n",
			[]string{`g.yaml:6: tracing.sample_ratio: must be between 0 and 1 (a share of new traces), got 1.5`}},
		{"sample_ratio not a number", head + "  sample_ratio: all\n",
			[]string{`g.yaml:5: tracing.sample_ratio: must be a number, got "all"`}},
		{"empty service_name", head + "  service_name: \"\"\n",
			[]string{`g.yaml:5: tracing.service_name: must not be empty`}},
		{"bad headers", head + "  endpoint: 127.0.0.1:4317\n  headers:\n    \"Bad Name\": x\n    X-Key: \"a\\r\\nEvil: 1\"\n",
			[]string{
				`g.yaml:7: tracing.headers.Bad Name: "Bad Name" is not a valid header name`,
				`g.yaml:8: tracing.headers.X-Key: the value has a control character (a line break?), which no request can carry`,
			}},
		{"headers the exporter sets", head + "  endpoint: 127.0.0.1:4317\n  headers: {Content-Type: text/plain, grpc-timeout: 1S}\n",
			[]string{
				`g.yaml:6: tracing.headers.Content-Type: "Content-Type" is set by the exporter itself (it frames the export), so it cannot be configured`,
				`g.yaml:6: tracing.headers.grpc-timeout: "grpc-timeout" is set by the exporter itself (it frames the export), so it cannot be configured`,
			}},
		{"headers equal but for case", head + "  endpoint: 127.0.0.1:4317\n  headers:\n    X-Key: a\n    x-key: b\n",
			[]string{`g.yaml:8: tracing.headers.x-key: "x-key" is the same header as "X-Key" (names are not case-sensitive)`}},
		{"header value not a string", head + "  headers: {X-Key: [sec, ret]}\n",
			[]string{`g.yaml:5: tracing.headers.X-Key: must be a string, got a list`}},
	})
}

func TestTracingDefaults(t *testing.T) {
	c, err := Parse("g.yaml", []byte(web+"tracing:\n  endpoint: 127.0.0.1:4317\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &Tracing{Endpoint: "127.0.0.1:4317", Protocol: TracingGRPC, SampleRatio: 1, ServiceName: "gatehouse"}
	if diff := cmp.Diff(want, c.Tracing); diff != "" {
		t.Errorf("tracing (-want +got):\n%s", diff)
	}
	if !c.Tracing.On() {
		t.Error("a block with an endpoint is off")
	}
	for _, y := range []string{web, web + "tracing:\n  protocol: http\n"} {
		c, err := Parse("g.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		if c.Tracing.On() {
			t.Errorf("%q: tracing on without an endpoint", y)
		}
	}
}

// The headers' values are secrets: the config's redacted dump hides
// them, and keeps their names.
func TestTracingHeadersRedacted(t *testing.T) {
	c, err := Parse("g.yaml", []byte(web+"tracing:\n  endpoint: 127.0.0.1:4317\n  headers: {x-api-key: s3cret}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Redacted().Tracing
	if got.Headers["x-api-key"] != RedactedText || strings.Contains(got.Endpoint, RedactedText) {
		t.Errorf("redacted tracing: %+v", got)
	}
}
