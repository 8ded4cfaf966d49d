// Package tracing owns gatehouse's OpenTelemetry tracer provider: the
// spans the gateway makes go through a batch processor with a bounded
// queue to an OTLP exporter (gRPC or HTTP/protobuf), sampled by the
// parent's decision or, for a new trace, by sample_ratio. The gateway
// sees only Start (its own gateway.Tracer); a full queue drops spans,
// and an export that fails is counted and logged, never waited for by a
// request.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/otlp"
)

// The batch processor's bounds. A span waits at most BatchTimeout to be
// sent (the SDK's default, which OTEL_BSP_SCHEDULE_DELAY can change);
// QueueSize spans at most wait, and a span ended while the queue is
// full is dropped rather than waited for.
const (
	QueueSize = 2048
	batchSize = 512
	// ExportTimeout bounds one export, retries included: a collector
	// that does not answer holds the exporting goroutine no longer, and
	// the queue fills (and drops) meanwhile, not the requests.
	ExportTimeout = 10 * time.Second
	// FlushTimeout bounds the flush at shutdown.
	FlushTimeout = 5 * time.Second
)

// MaxAttributeValue bounds the length of a span's string attribute
// values (in characters), unless OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT
// or OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT sets another: spans carry what a
// client sent (its path, its host), each up to limits.request_head, and
// QueueSize of them wait while the collector is slow or down.
const MaxAttributeValue = 2048

// warnEvery spaces the warnings of failed exports: a collector that is
// down fails every batch.
const warnEvery = time.Minute

// Provider is a running tracer provider. Its Start is the gateway's
// Tracer.
type Provider struct {
	tp     *sdktrace.TracerProvider
	tracer trace.Tracer
	exp    *exporter
	once   sync.Once
}

// Options are the provider's collaborators.
type Options struct {
	// Logger receives the warnings of failed exports; nil discards them.
	Logger *slog.Logger
}

// New makes the provider cfg asks for; nil when tracing is off (no
// tracing: block, or no endpoint). It connects to nothing yet: the
// exporter dials when it first exports.
func New(cfg *config.Tracing, opts Options) (*Provider, error) {
	if !cfg.On() {
		return nil, nil
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	inner, err := newExporter(cfg)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	exp := &exporter{SpanExporter: inner, log: opts.Logger, endpoint: cfg.Endpoint}
	exp.stop, exp.abandon = context.WithCancel(context.Background())
	name := resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName))
	res, err := resource.Merge(resource.Default(), name)
	if err != nil {
		// Only schema URLs that disagree fail a merge: the name alone
		// then.
		res = name
	}
	limits := sdktrace.NewSpanLimits() // the environment's
	if limits.AttributeValueLengthLimit < 0 {
		limits.AttributeValueLengthLimit = MaxAttributeValue
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithRawSpanLimits(limits),
		sdktrace.WithBatcher(exp,
			sdktrace.WithMaxQueueSize(QueueSize),
			sdktrace.WithMaxExportBatchSize(batchSize),
			sdktrace.WithExportTimeout(ExportTimeout)),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
		sdktrace.WithResource(res),
	)
	return &Provider{tp: tp, tracer: tp.Tracer("github.com/gatehouse/gatehouse/internal/gateway"), exp: exp}, nil
}

// newExporter makes the OTLP exporter of cfg's protocol and endpoint
// (config.Tracing says which forms each takes).
func newExporter(cfg *config.Tracing) (sdktrace.SpanExporter, error) {
	protocol := otlp.GRPC
	if cfg.Protocol == config.TracingHTTP {
		protocol = otlp.HTTP
	}
	return otlp.New(otlp.Options{Protocol: protocol, Endpoint: cfg.Endpoint, Headers: cfg.Headers})
}

// Start starts a span, as trace.Tracer's Start does: the gateway's
// Tracer.
func (p *Provider) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	return p.tracer.Start(ctx, name, opts...)
}

// Run waits for ctx to end, then flushes what is queued, within
// FlushTimeout, and stops the exporter: the server runs it with its
// loops, which stop once the requests in flight have drained (and their
// spans ended).
func (p *Provider) Run(ctx context.Context) error {
	<-ctx.Done()
	c, cancel := context.WithTimeout(context.Background(), FlushTimeout)
	defer cancel()
	p.Shutdown(c)
	return nil
}

// Shutdown flushes the queued spans and stops the exporter and the batch
// processor's goroutine, and returns once they have stopped; later calls
// do nothing. When ctx ends first, the export under way and those still
// to come are abandoned (their spans counted as failed in Stats), so
// that Shutdown returns promptly after ctx ends with nothing left
// running. A flush that fails (the collector is down) is no reason for
// gatehouse's stop to fail: it is logged, not returned.
func (p *Provider) Shutdown(ctx context.Context) {
	p.once.Do(func() {
		defer context.AfterFunc(ctx, p.exp.abandon)()
		// The processor is given a context that does not end: had it
		// one that ended, it would return while its goroutine still
		// exports. Abandoning the exports is what bounds it.
		err := p.tp.Shutdown(context.WithoutCancel(ctx))
		if p.exp.stop.Err() != nil {
			err = ctx.Err()
		}
		if err != nil {
			p.exp.log.Warn("tracing: spans lost at shutdown", "endpoint", p.exp.endpoint, "err", err)
		}
	})
}

// Stats counts what the exporter did with the spans that left the queue.
type Stats struct {
	// Exported spans reached the endpoint; Failed ones did not (the
	// endpoint refused them or could not be reached within
	// ExportTimeout).
	Exported, Failed int64
	// FailedExports counts the exports (batches) that failed.
	FailedExports int64
}

// Stats reports the exporter's counts so far.
func (p *Provider) Stats() Stats {
	return Stats{Exported: p.exp.exported.Load(), Failed: p.exp.failed.Load(), FailedExports: p.exp.failedExports.Load()}
}

// exporter counts the spans its SpanExporter sends and those it fails
// to, and logs failures at most once every warnEvery. It reports no
// error to the batch processor, which would hand it to OpenTelemetry's
// process-wide error handler (stderr by default): the failure is
// gatehouse's to tell, through its own log.
type exporter struct {
	sdktrace.SpanExporter
	log      *slog.Logger
	endpoint string
	// stop ends when the provider's flush runs out of time (abandon):
	// an export under way is cancelled, and any later one fails at once.
	stop    context.Context
	abandon context.CancelFunc

	exported, failed, failedExports atomic.Int64
	// warned is when the last warning was logged (UnixNano).
	warned atomic.Int64
}

func (e *exporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.stop.Err()
	if err == nil {
		c, cancel := context.WithCancel(ctx)
		unstop := context.AfterFunc(e.stop, cancel)
		err = e.SpanExporter.ExportSpans(c, spans)
		unstop()
		cancel()
	}
	if err == nil {
		e.exported.Add(int64(len(spans)))
		return nil
	}
	failed := int64(len(spans))
	if pe, ok := errors.AsType[*otlp.PartialError](err); ok {
		// The receiver kept the rest.
		failed = min(max(pe.Rejected, 0), failed)
		e.exported.Add(int64(len(spans)) - failed)
		if failed == 0 {
			// It took every span, and warned.
			if e.mayWarn() {
				e.log.Warn("tracing: the receiver warned", "endpoint", e.endpoint, "err", err)
			}
			return nil
		}
	}
	e.failed.Add(failed)
	n := e.failedExports.Add(1)
	if e.mayWarn() {
		e.log.Warn("tracing: spans not exported", "endpoint", e.endpoint, "spans", failed,
			"failed_exports", n, "err", err)
	}
	return nil
}

// mayWarn says whether a warning may be logged now: one every
// warnEvery at most.
func (e *exporter) mayWarn() bool {
	now := time.Now().UnixNano()
	last := e.warned.Load()
	return (last == 0 || now-last >= int64(warnEvery)) && e.warned.CompareAndSwap(last, now)
}
