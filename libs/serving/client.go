package serving

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// ClientConfig is how a service calls another.
type ClientConfig struct {
	// TLS, when set, presents this service's certificate (mTLS).
	TLS TLSFiles
	// ServerName overrides the name verified against the server certificate.
	ServerName string
	// DefaultTimeout is the deadline given to calls that carry none.
	DefaultTimeout time.Duration
}

// Dial returns a client connection to target that carries trace context,
// presents the client certificate when TLS is set, and gives every call
// without a deadline cfg.DefaultTimeout (5 s when zero). The connection is
// lazy: it connects on first use. Close it when done.
func Dial(target string, cfg ClientConfig, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if cfg.TLS.Enabled() {
		tc, err := cfg.TLS.ClientConfig(cfg.ServerName)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", target, err)
		}
		creds = credentials.NewTLS(tc)
	}
	timeout := cfg.DefaultTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithChainUnaryInterceptor(defaultDeadline(timeout)),
	}
	conn, err := grpc.NewClient(target, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", target, err)
	}
	return conn, nil
}

func defaultDeadline(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
