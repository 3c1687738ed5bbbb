package serving

import (
	"context"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// limiter gives each client its own token bucket. Clients are told apart by
// the last X-Forwarded-For address, the one our own nearest proxy (the
// REST gateway, the edge, an ingress gateway) appended, which a client
// cannot forge; else by the peer's IP. Idle buckets are forgotten.
type limiter struct {
	rps   rate.Limit
	burst int
	mu    sync.Mutex
	byKey map[string]*bucket
	swept time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiter(rps float64, burst int) *limiter {
	return &limiter{rps: rate.Limit(rps), burst: max(burst, 1), byKey: map[string]*bucket{}, swept: time.Now()}
}

func (l *limiter) allow(key string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		for k, b := range l.byKey {
			if now.Sub(b.seen) > 5*time.Minute {
				delete(l.byKey, k)
			}
		}
		l.swept = now
	}
	b := l.byKey[key]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(l.rps, l.burst)}
		l.byKey[key] = b
	}
	b.seen = now
	return b.l.AllowN(now, 1)
}

func clientKey(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, k := range []string{"x-forwarded-for", "x-real-ip"} {
			if v := md.Get(k); len(v) > 0 && v[len(v)-1] != "" {
				hops := strings.Split(v[len(v)-1], ",")
				return strings.TrimSpace(hops[len(hops)-1])
			}
		}
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
			return host
		}
		return p.Addr.String()
	}
	return "unknown"
}

// exempt are the methods never limited: probes and tooling.
func exempt(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.") || strings.HasPrefix(method, "/grpc.reflection.")
}

func (l *limiter) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !exempt(info.FullMethod) && !l.allow(clientKey(ctx)) {
			return nil, status.Errorf(codes.ResourceExhausted, "rate limit: more than %g requests/s from this client; slow down and retry", float64(l.rps))
		}
		return handler(ctx, req)
	}
}
