package serving

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// limiter gives each client its own token bucket. A client is the peer
// that connected, unless that peer is a trusted proxy (-trusted-proxies,
// or the in-process REST gateway, trusted by construction): then it is
// the right-most X-Forwarded-For address that no trusted proxy appended.
// So forwarding headers count only when a proxy we trust wrote them, the
// same on gRPC, gRPC-Web and REST. Idle buckets are forgotten.
type limiter struct {
	rps     rate.Limit
	burst   int
	trusted []netip.Prefix
	limited *prometheus.CounterVec
	mu      sync.Mutex
	byKey   map[string]*bucket
	swept   time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

func newLimiter(rps float64, burst int, trusted []netip.Prefix, reg prometheus.Registerer) *limiter {
	l := &limiter{rps: rate.Limit(rps), burst: max(burst, 1), trusted: trusted, byKey: map[string]*bucket{}, swept: time.Now(),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_rate_limited_total",
			Help: "Calls refused by the per-client rate limit, by protocol (grpc, grpc-web, rest).",
		}, []string{"protocol"})}
	reg.MustRegister(l.limited)
	return l
}

// ParseTrustedProxies reads -trusted-proxies: CIDRs or single addresses.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("-trusted-proxies %q: want a CIDR such as 10.0.0.0/8 or an address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func (l *limiter) isTrusted(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range l.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
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

// inProcessNetwork is the network of the in-memory listener that carries
// REST calls from the gateway into the gRPC server.
const inProcessNetwork = "bufconn"

// client tells the caller apart, and by which protocol it came.
func (l *limiter) client(ctx context.Context) (key, protocol string) {
	md, _ := metadata.FromIncomingContext(ctx)
	protocol = "grpc"
	if len(md.Get("x-grpc-web")) > 0 {
		protocol = "grpc-web"
	}
	key = "unknown"
	inProcess := false
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		inProcess = p.Addr.Network() == inProcessNetwork
		key = p.Addr.String()
		if host, _, err := net.SplitHostPort(key); err == nil {
			key = host
		}
	}
	if inProcess {
		protocol = "rest"
	} else if !l.isTrusted(key) {
		return key, protocol
	}
	// The peer is a proxy we trust: walk the hops it and the proxies
	// before it appended, right to left, to the first one no trusted
	// proxy is.
	var hops []string
	for _, v := range md.Get("x-forwarded-for") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		h := strings.TrimSpace(hops[i])
		if h == "" {
			continue
		}
		key = h
		if !l.isTrusted(h) {
			break
		}
	}
	return key, protocol
}

// exempt are the methods never limited: probes and tooling.
func exempt(method string) bool {
	return strings.HasPrefix(method, "/grpc.health.v1.") || strings.HasPrefix(method, "/grpc.reflection.")
}

func (l *limiter) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if exempt(info.FullMethod) {
			return handler(ctx, req)
		}
		if key, protocol := l.client(ctx); !l.allow(key) {
			l.limited.WithLabelValues(protocol).Inc()
			return nil, status.Errorf(codes.ResourceExhausted, "rate limit: more than %g requests/s from this client; slow down and retry", float64(l.rps))
		}
		return handler(ctx, req)
	}
}
