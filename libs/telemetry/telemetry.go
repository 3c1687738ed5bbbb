// Package telemetry builds the logger and the trace pipeline every binary
// uses: JSON logs through log/slog and W3C trace context propagated on every
// gRPC hop (and, through message headers, across Kafka).
package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// NewLogger returns a JSON logger writing to w at the named level (debug,
// info, warn, error) with the service name on every record.
func NewLogger(w io.Writer, service, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", level)
	}
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})
	return slog.New(h).With("service", service), nil
}

// SetupTracing installs the process-wide tracer provider and the W3C trace
// context propagator that the gRPC stats handlers use. Spans are sampled when
// the caller sampled them. It returns a function that flushes and stops the
// provider; call it once at exit.
func SetupTracing() (shutdown func(context.Context) error) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return tp.Shutdown
}
