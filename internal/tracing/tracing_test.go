package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gatehouse/gatehouse/internal/otlp"
)

// answering is a SpanExporter that answers every export with err.
type answering struct{ err error }

func (a answering) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return a.err }
func (answering) Shutdown(context.Context) error                               { return nil }

// record is what a test keeps of a log record: its level, message and
// attributes (each value in its text form).
type record struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// recorder is a slog.Handler that keeps the records logged.
type recorder struct {
	mu      sync.Mutex
	records []record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	attrs := map[string]string{}
	rec.Attrs(func(a slog.Attr) bool {
		attrs[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, record{rec.Level, rec.Message, attrs})
	return nil
}

func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) logged() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.records...)
}

// TestExportAccounting: what the exporter answers an export of three
// spans is counted in the provider's Stats and logged. A receiver that
// took them all with a warning (a partial success refusing none)
// exported them all and failed no export; one that refused some (or
// more than it was sent) failed those.
func TestExportAccounting(t *testing.T) {
	const endpoint = "collector.example:4317"
	spans := tracetest.SpanStubs{{Name: "a"}, {Name: "b"}, {Name: "c"}}.Snapshots()
	refused := &otlp.StatusError{Protocol: otlp.GRPC, HTTPStatus: 200, GRPCCode: 3, Message: "bad span"}
	tests := []struct {
		name      string
		err       error // the exporter's answer
		wantStats Stats
		wantLog   []record
	}{
		{name: "taken", wantStats: Stats{Exported: 3}},
		{
			name: "taken with a warning", err: &otlp.PartialError{Message: "dropped an attribute"},
			wantStats: Stats{Exported: 3},
			wantLog: []record{{slog.LevelWarn, "tracing: the receiver warned", map[string]string{
				"endpoint": endpoint, "err": "otlp: the receiver took every span, and warned: dropped an attribute",
			}}},
		},
		{
			name: "one span refused", err: &otlp.PartialError{Rejected: 1, Message: "too old"},
			wantStats: Stats{Exported: 2, Failed: 1, FailedExports: 1},
			wantLog: []record{{slog.LevelWarn, "tracing: spans not exported", map[string]string{
				"endpoint": endpoint, "spans": "1", "failed_exports": "1", "err": "otlp: the receiver refused 1 spans: too old",
			}}},
		},
		{
			name: "more spans refused than sent", err: &otlp.PartialError{Rejected: 99},
			wantStats: Stats{Failed: 3, FailedExports: 1},
			wantLog: []record{{slog.LevelWarn, "tracing: spans not exported", map[string]string{
				"endpoint": endpoint, "spans": "3", "failed_exports": "1", "err": "otlp: the receiver refused 99 spans",
			}}},
		},
		{
			name: "the export refused", err: fmt.Errorf("wrapped: %w", refused),
			wantStats: Stats{Failed: 3, FailedExports: 1},
			wantLog: []record{{slog.LevelWarn, "tracing: spans not exported", map[string]string{
				"endpoint": endpoint, "spans": "3", "failed_exports": "1", "err": "wrapped: " + refused.Error(),
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs recorder
			e := &exporter{SpanExporter: answering{tt.err}, log: slog.New(&logs), endpoint: endpoint}
			e.stop, e.abandon = context.WithCancel(context.Background())
			t.Cleanup(e.abandon)
			if err := e.ExportSpans(context.Background(), spans); err != nil {
				t.Errorf("ExportSpans: %v, want nil (failures are counted and logged, not returned)", err)
			}
			p := &Provider{exp: e}
			if diff := cmp.Diff(tt.wantStats, p.Stats()); diff != "" {
				t.Errorf("Stats (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantLog, logs.logged()); diff != "" {
				t.Errorf("the log (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWarningsAreSpaced: a receiver that warns of every export, or
// fails every one, has one warning logged a minute, not one an export;
// every export is counted all the same.
func TestWarningsAreSpaced(t *testing.T) {
	spans := tracetest.SpanStubs{{Name: "a"}}.Snapshots()
	tests := []struct {
		name      string
		err       error
		wantStats Stats
		wantMsg   string
	}{
		{"warnings", &otlp.PartialError{Message: "dropped an attribute"}, Stats{Exported: 3}, "tracing: the receiver warned"},
		{"failures", errors.New("unreachable"), Stats{Failed: 3, FailedExports: 3}, "tracing: spans not exported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs recorder
			e := &exporter{SpanExporter: answering{tt.err}, log: slog.New(&logs)}
			e.stop, e.abandon = context.WithCancel(context.Background())
			t.Cleanup(e.abandon)
			for range 3 {
				e.ExportSpans(context.Background(), spans)
			}
			if diff := cmp.Diff(tt.wantStats, (&Provider{exp: e}).Stats()); diff != "" {
				t.Errorf("Stats (-want +got):\n%s", diff)
			}
			var msgs []string
			for _, r := range logs.logged() {
				msgs = append(msgs, r.Msg)
			}
			if diff := cmp.Diff([]string{tt.wantMsg}, msgs); diff != "" {
				t.Errorf("the messages logged (-want +got):\n%s", diff)
			}
		})
	}
}
