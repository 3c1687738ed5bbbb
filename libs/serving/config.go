package serving

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"time"

	"github.com/recsys/recsys/libs/config"
)

// Config is what every service needs to serve. Fill it with RegisterFlags
// and check it with Validate.
type Config struct {
	// GRPCAddr is the native gRPC listen address.
	GRPCAddr string
	// HTTPAddr serves REST, gRPC-Web, /metrics, /livez, /readyz and
	// /openapi.json.
	HTTPAddr string
	// AllowedOrigins may call REST and gRPC-Web from a browser (CORS).
	// "*" allows every origin.
	AllowedOrigins config.StringList
	// MaxRequestBytes bounds one request message (gRPC) or body (HTTP).
	MaxRequestBytes int
	// MaxConcurrentStreams bounds the concurrent calls on one connection.
	MaxConcurrentStreams uint
	// ShutdownTimeout bounds the graceful stop; calls still running then are
	// cancelled.
	ShutdownTimeout time.Duration
	// ReadyInterval is how often readiness checks run.
	ReadyInterval time.Duration
	// TLS, when its files are set, turns on mutual TLS on the gRPC port
	// and HTTPS on the HTTP port (with the same certificate; API calls
	// there need a client certificate unless PublicHTTP).
	TLS TLSFiles
	// PublicHTTP marks the HTTP port as a public edge that browsers call:
	// under TLS its API paths need no client certificate. Set by the
	// binary (the web edge), not by a flag.
	PublicHTTP bool
	// RateLimit is the requests per second one client may make (0: no
	// limit); RateBurst how many it may make at once.
	RateLimit float64
	RateBurst int
	// TrustedProxies are the CIDRs of proxies whose X-Forwarded-For hops
	// name the client (default none: the peer is the client).
	TrustedProxies config.StringList
	// PprofAddr serves net/http/pprof there; it must be a loopback address.
	PprofAddr string
}

// RegisterFlags adds the serving flags to fs with the given default ports.
func (c *Config) RegisterFlags(fs *flag.FlagSet, grpcPort, httpPort int) {
	fs.StringVar(&c.GRPCAddr, "grpc-addr", fmt.Sprintf(":%d", grpcPort), "gRPC listen address")
	fs.StringVar(&c.HTTPAddr, "http-addr", fmt.Sprintf(":%d", httpPort), "HTTP listen address (REST, gRPC-Web, metrics, health)")
	c.AllowedOrigins = config.StringList{"http://localhost:8080", "http://127.0.0.1:8080"}
	fs.Var(&c.AllowedOrigins, "cors-origins", "comma-separated browser origins allowed to call REST and gRPC-Web (* for any)")
	fs.IntVar(&c.MaxRequestBytes, "max-request-bytes", 4<<20, "largest accepted request message or body in bytes")
	fs.UintVar(&c.MaxConcurrentStreams, "max-concurrent-streams", 1000, "concurrent calls allowed on one gRPC connection")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long in-flight calls may run after SIGTERM")
	fs.DurationVar(&c.ReadyInterval, "ready-interval", time.Second, "how often readiness checks run")
	c.TLS.RegisterFlags(fs)
	fs.Float64Var(&c.RateLimit, "rate-limit", 0, "requests per second allowed per client (0: no limit); beyond it calls get ResourceExhausted / HTTP 429")
	fs.IntVar(&c.RateBurst, "rate-burst", 100, "requests a client may make at once under -rate-limit")
	fs.Var(&c.TrustedProxies, "trusted-proxies", "comma-separated CIDRs of proxies whose X-Forwarded-For hops name the client, for -rate-limit (default none: the connecting peer is the client)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", "", "serve pprof on this loopback address (e.g. 127.0.0.1:6060); empty: off")
}

// Validate reports every problem in c at once.
func (c Config) Validate() error {
	var errs []error
	for name, addr := range map[string]string{"grpc-addr": c.GRPCAddr, "http-addr": c.HTTPAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("-%s %q: want host:port or :port", name, addr))
		}
	}
	if c.MaxRequestBytes < 1024 {
		errs = append(errs, fmt.Errorf("-max-request-bytes %d: want at least 1024", c.MaxRequestBytes))
	}
	if c.MaxConcurrentStreams == 0 {
		errs = append(errs, errors.New("-max-concurrent-streams: want at least 1"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("-shutdown-timeout %s: want a positive duration", c.ShutdownTimeout))
	}
	if c.ReadyInterval <= 0 {
		errs = append(errs, fmt.Errorf("-ready-interval %s: want a positive duration", c.ReadyInterval))
	}
	if c.RateLimit < 0 || (c.RateLimit > 0 && c.RateBurst < 1) {
		errs = append(errs, fmt.Errorf("-rate-limit %g / -rate-burst %d: want a non-negative rate and a positive burst", c.RateLimit, c.RateBurst))
	}
	if _, err := ParseTrustedProxies(c.TrustedProxies); err != nil {
		errs = append(errs, err)
	}
	if c.PprofAddr != "" {
		host, _, err := net.SplitHostPort(c.PprofAddr)
		if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			errs = append(errs, fmt.Errorf("-pprof-addr %q: must be a loopback address such as 127.0.0.1:6060", c.PprofAddr))
		}
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// SetDefault changes the default of a registered flag (a service's own
// default for a serving flag), so -h shows it too.
func SetDefault(fs *flag.FlagSet, name, value string) {
	f := fs.Lookup(name)
	if f == nil {
		panic("serving: no flag -" + name) // a programming error, caught by any test that registers flags
	}
	if err := f.Value.Set(value); err != nil {
		panic(fmt.Sprintf("serving: default %q for -%s: %v", value, name, err))
	}
	f.DefValue = value
}
