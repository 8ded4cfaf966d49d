package server

import (
	"context"

	"github.com/gatehouse/gatehouse/internal/gateway"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/tracing"
)

// gatewayTracer is the gateway's Tracer: nil, not a nil *Provider, when
// tracing is off, so that the gateway's nil check sees it off.
func (s *Server) gatewayTracer() gateway.Tracer {
	if s.tracer == nil {
		return nil
	}
	return s.tracer
}

// traceCounts is what /metrics reports of the span exporter.
func (s *Server) traceCounts() metrics.TraceCounts {
	st := s.tracer.Stats()
	return metrics.TraceCounts{Exported: uint64(st.Exported), Failed: uint64(st.Failed)}
}

// startTracing runs the tracer provider with the loops, when tracing is
// on: it flushes the queued spans (within tracing.FlushTimeout) when they
// stop, at step 3 of the shutdown, after the requests in flight have
// drained and ended their spans.
func (s *Server) startTracing(exited chan<- *component, loopCtx context.Context) *component {
	if s.tracer == nil {
		return nil
	}
	return start("tracing", exited, func() error { return s.tracer.Run(loopCtx) })
}

// stopTracing stops the tracer provider, if it runs, flushing within
// tracing.FlushTimeout; after startTracing's flush it does nothing. For
// a server that stops before it ran, or never runs (New failing).
func (s *Server) stopTracing() {
	if s.tracer == nil {
		return
	}
	c, cancel := context.WithTimeout(context.Background(), tracing.FlushTimeout)
	defer cancel()
	s.tracer.Shutdown(c)
}

// Tracing is the tracer provider; nil when tracing is off.
func (s *Server) Tracing() *tracing.Provider { return s.tracer }
