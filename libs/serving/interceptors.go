package serving

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rpcMetrics uses the metric names of go-grpc-prometheus so that existing
// dashboards and alerts work unchanged.
type rpcMetrics struct {
	handled  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	panics   prometheus.Counter
}

func newRPCMetrics(reg prometheus.Registerer) *rpcMetrics {
	m := &rpcMetrics{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total",
			Help: "RPCs completed on the server, by method and status code.",
		}, []string{"grpc_service", "grpc_method", "grpc_code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Time to handle an RPC on the server, by method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"grpc_service", "grpc_method"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "recsys_grpc_panics_recovered_total",
			Help: "Handler panics turned into Internal errors.",
		}),
	}
	reg.MustRegister(m.handled, m.duration, m.panics)
	return m
}

func (m *rpcMetrics) observe(fullMethod string, start time.Time, err error) {
	svc, method := splitMethod(fullMethod)
	m.handled.WithLabelValues(svc, method, status.Code(err).String()).Inc()
	m.duration.WithLabelValues(svc, method).Observe(time.Since(start).Seconds())
}

func splitMethod(full string) (string, string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.LastIndex(full, "/"); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", full
}

// unary records metrics around recovery, so a recovered panic is counted
// as the Internal it became.
func (m *rpcMetrics) unary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				err = m.recovered(logger, info.FullMethod, r)
			}
			m.observe(info.FullMethod, start, err)
		}()
		return handler(ctx, req)
	}
}

func (m *rpcMetrics) stream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				err = m.recovered(logger, info.FullMethod, r)
			}
			m.observe(info.FullMethod, start, err)
		}()
		return handler(srv, ss)
	}
}

func (m *rpcMetrics) recovered(logger *slog.Logger, method string, r any) error {
	m.panics.Inc()
	logger.Error("handler panicked", "method", method, "panic", r, "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "internal error in %s; the server logged the details", method)
}
