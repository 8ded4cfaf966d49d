package tracing

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/tracing/otlptest"
)

// exportedPath is the url.path of the span exported for a request of
// path, through a provider exporting to a receiver over gRPC.
func exportedPath(t *testing.T, path string) string {
	t.Helper()
	rcv := otlptest.Start(t)
	cfg := config.NewTracing()
	cfg.Endpoint = rcv.GRPCAddr()
	p, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, sp := p.Start(context.Background(), "GET")
	sp.SetAttributes(attribute.String("url.path", path))
	sp.End()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.Shutdown(ctx)
	spans := rcv.Spans()
	if len(spans) != 1 {
		t.Fatalf("the receiver has %d spans, want 1", len(spans))
	}
	return spans[0].Attrs["url.path"]
}

// A client's long path (or host) is cut in its span to
// MaxAttributeValue characters: the queue holds QueueSize spans while
// the collector is slow, each else as large as a request's head may be.
func TestLongAttributeValuesAreCut(t *testing.T) {
	long := "/" + strings.Repeat("p", 60<<10)
	tests := []struct {
		name, path, want string
	}{
		{"a long path", long, long[:MaxAttributeValue]},
		{"a path within the bound", long[:MaxAttributeValue], long[:MaxAttributeValue]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exportedPath(t, tt.path); got != tt.want {
				t.Errorf("url.path of %d characters exported as %d, want %d", len(tt.path), len(got), len(tt.want))
			}
		})
	}
}

// OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT, when set, is the bound.
func TestAttributeValueLimitOfTheEnvironment(t *testing.T) {
	t.Setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "10")
	if got := exportedPath(t, "/0123456789abcdef"); got != "/012345678" {
		t.Errorf("url.path exported as %q, want it cut to 10 characters", got)
	}
}
