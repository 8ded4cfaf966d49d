package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// traced makes next an instrumented app, as an app with OpenTelemetry
// is: each request gets a SERVER span, the child of the span its
// traceparent names, exported over OTLP/HTTP to endpoint (a base URL;
// spans go to /v1/traces) before the answer leaves. With endpoint "" it
// is next. The provider is shut down by the returned func.
func traced(next http.Handler, endpoint, instance string) (http.Handler, func(), error) {
	if endpoint == "" {
		return next, func() {}, nil
	}
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(endpoint+"/v1/traces"))
	if err != nil {
		return nil, nil, fmt.Errorf("otlp exporter: %w", err)
	}
	// Synchronous export: the span is at the receiver before the answer
	// is, so that a test waits for nothing but the answer.
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "faultapp"))))
	tracer := tp.Tracer("faultapp")
	prop := propagation.TraceContext{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		_, span := tracer.Start(ctx, "faultapp "+r.Method+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("faultapp.instance", instance)))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		span.SetAttributes(attribute.Int("http.response.status_code", rec.status))
		span.End()
	})
	return h, func() { tp.Shutdown(context.Background()) }, nil
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// crashOnce crashes the process, as /crash does, if it is the first to
// create the file ?file= names; any later request (on any instance)
// answers 200. So a request retried after the crash is served by the
// next instance it reaches.
func (a *app) crashOnce(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("file")
	if name == "" {
		a.text(w, http.StatusBadRequest, "file: required")
		return
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	switch {
	case err == nil:
		f.Close()
		a.crash(w, r)
	case errors.Is(err, fs.ErrExist):
		a.text(w, http.StatusOK, "instance %s survived: %s was already crashed on", a.instance, name)
	default:
		a.text(w, http.StatusInternalServerError, "crash-once: %v", err)
	}
}
