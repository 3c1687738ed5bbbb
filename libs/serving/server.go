// Package serving runs one service's gRPC server and, on a second port, its
// HTTP face: REST through grpc-gateway, gRPC-Web, Prometheus metrics,
// liveness, readiness and the OpenAPI document. Every service uses it, so
// all of them behave alike on every protocol.
//
// Lifecycle: New listens on both ports; register services on GRPC() and
// their REST handlers with HandleGateway; then Run serves until its context
// ends and stops gracefully. A Server runs once.
package serving

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/recsys/recsys/gen/openapi"
)

// LivenessService is the gRPC health service name that reports whether the
// process is alive, not whether it is ready: it stays SERVING through a
// dependency outage (when the default "" turns NOT_SERVING) until shutdown,
// so a liveness probe on it does not restart a pod that only waits for
// Redis or Kafka to come back.
const LivenessService = "liveness"

// Check reports whether a dependency the service needs is usable. It must
// return promptly once ctx is done.
type Check func(ctx context.Context) error

// GatewayRegistrar is the signature of the generated RegisterXHandler
// functions of grpc-gateway.
type GatewayRegistrar func(ctx context.Context, mux *runtime.ServeMux, conn *grpc.ClientConn) error

// Server is one service's network face. Its methods may be called
// concurrently once Run has started, except the registration methods, which
// must be called before Run.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	grpc    *grpc.Server
	health  *health.Server
	metrics *prometheus.Registry
	gateway *runtime.ServeMux
	openAPI []byte
	extra   map[string]http.Handler

	grpcLis, httpLis net.Listener
	// local carries REST calls into the gRPC server in memory, so they pass
	// the same interceptors (recovery, metrics, limits) as native calls.
	local     *bufconn.Listener
	localConn *grpc.ClientConn

	watches  watches
	checks   map[string]Check
	mu       sync.Mutex
	detail   map[string]string
	stopping bool
	results  map[string]string // check name → "ok" or the error
}

// New builds a Server and opens its two listeners.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{
		cfg:     cfg,
		logger:  logger,
		health:  health.NewServer(),
		metrics: prometheus.NewRegistry(),
		extra:   map[string]http.Handler{},
		checks:  map[string]Check{},
		results: map[string]string{},
		local:   bufconn.Listen(1 << 20),
	}
	s.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rpc := newRPCMetrics(s.metrics)

	unary := []grpc.UnaryServerInterceptor{rpc.unary(logger)}
	if cfg.RateLimit > 0 {
		trusted, err := ParseTrustedProxies(cfg.TrustedProxies)
		if err != nil {
			return nil, err
		}
		unary = append(unary, newLimiter(cfg.RateLimit, cfg.RateBurst, trusted, s.metrics).unary())
	}
	// Last before the handler: a request that breaks its contract never
	// reaches one, on any protocol, and still counts against the limit.
	valid, err := newRequestValidator()
	if err != nil {
		return nil, err
	}
	unary = append(unary, valid.unary)
	opts := []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(rpc.stream(logger), s.watches.intercept, valid.stream),
		grpc.MaxRecvMsgSize(cfg.MaxRequestBytes),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxConcurrentStreams)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
	localCreds := insecure.NewCredentials()
	if cfg.TLS.Enabled() {
		tc, err := cfg.TLS.ServerConfig()
		if err != nil {
			return nil, fmt.Errorf("serving TLS: %w", err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
		// The in-memory REST path meets the same mTLS check: the service
		// presents its own certificate, verified as its own name.
		name, err := certName(tc.Certificates[0])
		if err != nil {
			return nil, err
		}
		cc, err := cfg.TLS.ClientConfig(name)
		if err != nil {
			return nil, err
		}
		localCreds = credentials.NewTLS(cc)
	}
	s.grpc = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	s.health.SetServingStatus(LivenessService, healthpb.HealthCheckResponse_SERVING)
	reflection.Register(s.grpc)

	conn, err := grpc.NewClient("passthrough:///local",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.local.DialContext(ctx) }),
		grpc.WithTransportCredentials(localCreds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("in-process gRPC client: %w", err)
	}
	s.localConn = conn
	s.gateway = NewGatewayMux(runtime.WithHealthzEndpoint(healthpb.NewHealthClient(conn)))

	if s.grpcLis, err = listen("gRPC", "grpc-addr", cfg.GRPCAddr); err != nil {
		return nil, err
	}
	if s.httpLis, err = listen("HTTP", "http-addr", cfg.HTTPAddr); err != nil {
		s.grpcLis.Close()
		return nil, err
	}
	return s, nil
}

// listen opens a TCP listener on addr, saying what to do when its port is
// taken.
func listen(what, flagName, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("listen %s: %w: another process holds the port, or a recent outgoing connection does "+
			"(the default ports are in the kernel's ephemeral range, and such a port frees within a minute); "+
			"choose another with -%s (-<service>.%s in the launcher)", what, err, flagName, flagName)
	case err != nil:
		return nil, fmt.Errorf("listen %s: %w", what, err)
	}
	return l, nil
}

// Close releases a Server that will not Run (a setup step after New
// failed). Run releases everything itself.
func (s *Server) Close() {
	s.grpcLis.Close()
	s.httpLis.Close()
	s.localConn.Close()
}

// GRPC is the server to register services on, before Run.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Metrics is the registry served on /metrics; register service metrics here.
func (s *Server) Metrics() *prometheus.Registry { return s.metrics }

// GRPCAddr and HTTPAddr are the bound addresses (useful with port 0).
func (s *Server) GRPCAddr() net.Addr { return s.grpcLis.Addr() }

// HTTPAddr is the bound HTTP address.
func (s *Server) HTTPAddr() net.Addr { return s.httpLis.Addr() }

// Publish mounts the REST handlers (generated by grpc-gateway) of the
// services declared in one proto file and serves that file's OpenAPI
// document on /openapi.json.
func (s *Server) Publish(file protoreflect.FileDescriptor, registrars ...GatewayRegistrar) error {
	for _, register := range registrars {
		if err := register(context.Background(), s.gateway, s.localConn); err != nil {
			return fmt.Errorf("register REST handlers of %s: %w", file.Path(), err)
		}
	}
	doc, err := openapi.Spec(file.Path())
	if err != nil {
		return fmt.Errorf("OpenAPI document of %s: %w", file.Path(), err)
	}
	s.openAPI = doc
	return nil
}

// Handle mounts an extra HTTP handler (net/http pattern syntax). Mounting
// "/" replaces the service's own REST and gRPC-Web handling (the web edge
// does this).
func (s *Server) Handle(pattern string, h http.Handler) { s.extra[pattern] = h }

// SetDetail publishes a fact about the service (the execution provider a
// model runs on, say) in the /readyz JSON under "detail".
func (s *Server) SetDetail(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.detail == nil {
		s.detail = map[string]string{}
	}
	s.detail[key] = value
}

// AddCheck adds a readiness check. The service reports SERVING on gRPC
// health and 200 on /readyz only while every check passes.
func (s *Server) AddCheck(name string, c Check) { s.checks[name] = c }

func (s *Server) readiness() (bool, map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	results := maps.Clone(s.results)
	if s.stopping {
		results["server"] = "shutting down"
		return false, results
	}
	for _, r := range results {
		if r != "ok" {
			return false, results
		}
	}
	return len(results) == len(s.checks), results
}

// runChecks evaluates every check once and publishes the outcome.
func (s *Server) runChecks(ctx context.Context) {
	results := make(map[string]string, len(s.checks))
	for name, check := range s.checks {
		cctx, cancel := context.WithTimeout(ctx, s.cfg.ReadyInterval)
		err := check(cctx)
		cancel()
		results[name] = "ok"
		if err != nil {
			results[name] = err.Error()
		}
	}
	s.mu.Lock()
	changed := !maps.Equal(s.results, results)
	s.results = results
	s.mu.Unlock()
	ready, _ := s.readiness()
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ready {
		st = healthpb.HealthCheckResponse_SERVING
	}
	if ctx.Err() != nil {
		return // shutting down: Shutdown already set NOT_SERVING
	}
	for svc := range s.grpc.GetServiceInfo() {
		s.health.SetServingStatus(svc, st)
	}
	s.health.SetServingStatus("", st)
	if changed {
		s.logger.Info("readiness", "ready", ready, "checks", results)
	}
}

// Run serves until ctx is done, then stops gracefully: health turns
// NOT_SERVING, listeners close, in-flight calls finish within
// ShutdownTimeout, and whatever still runs is then cancelled. It returns
// nil after a clean stop.
func (s *Server) Run(ctx context.Context) error {
	httpSrv := &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	// With TLS the HTTP port speaks HTTPS too (plaintext reaches only the
	// operational endpoints: requireTLS).
	httpLis := s.httpLis
	if s.cfg.TLS.Enabled() {
		tc, err := s.httpsConfig()
		if err != nil {
			return fmt.Errorf("HTTPS: %w", err)
		}
		httpSrv.TLSConfig = tc
		httpLis = newSniffListener(s.httpLis, tc)
	}
	s.runChecks(ctx)
	s.logger.Info("serving", "grpc", s.GRPCAddr().String(), "http", s.HTTPAddr().String(), "mtls", s.cfg.TLS.Enabled())

	errc := make(chan error, 4)
	var wg sync.WaitGroup
	var pprofSrv *http.Server
	if s.cfg.PprofAddr != "" {
		pprofSrv = &http.Server{Addr: s.cfg.PprofAddr, Handler: pprofMux(), ReadHeaderTimeout: 10 * time.Second}
		wg.Go(func() { errc <- serveErr("pprof", pprofSrv.ListenAndServe()) })
	}
	wg.Go(func() { errc <- serveErr("gRPC", s.grpc.Serve(s.grpcLis)) })
	wg.Go(func() { errc <- serveErr("in-process gRPC", s.grpc.Serve(s.local)) })
	wg.Go(func() { errc <- serveErr("HTTP", httpSrv.Serve(httpLis)) })
	checksDone := make(chan struct{})
	checkCtx, stopChecks := context.WithCancel(ctx)
	go func() {
		defer close(checksDone)
		t := time.NewTicker(s.cfg.ReadyInterval)
		defer t.Stop()
		for {
			select {
			case <-checkCtx.Done():
				return
			case <-t.C:
				s.runChecks(checkCtx)
			}
		}
	}()

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stopChecks()
	<-checksDone
	s.stop(httpSrv)
	if pprofSrv != nil {
		pprofSrv.Close()
	}
	wg.Wait()
	close(errc)
	for e := range errc {
		err = errors.Join(err, e)
	}
	return err
}

func (s *Server) stop(httpSrv *http.Server) {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.health.Shutdown()
	s.watches.stop()
	s.logger.Info("stopping", "timeout", s.cfg.ShutdownTimeout.String())

	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	grpcDone := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(grpcDone)
	}()
	// HTTP first: REST calls in flight still need the in-process connection.
	if err := httpSrv.Shutdown(ctx); err != nil {
		s.logger.Warn("HTTP calls still running at the shutdown deadline; closing", "err", err)
		httpSrv.Close()
	}
	s.localConn.Close()
	select {
	case <-grpcDone:
	case <-ctx.Done():
		s.logger.Warn("gRPC calls still running at the shutdown deadline; cancelling them")
		s.grpc.Stop()
		<-grpcDone
	}
	s.logger.Info("stopped")
}

// watches ends health Watch streams when the server stops, each right
// after it has told its client NOT_SERVING (at once if it already had):
// GracefulStop waits for every stream, and a watch never ends by itself.
type watches struct {
	mu       sync.Mutex
	stopping bool
	open     map[*watchStream]bool // stream → it last sent a status other than SERVING
}

type watchStream struct {
	grpc.ServerStream
	ctx    context.Context
	cancel context.CancelFunc
	w      *watches
}

func (ws *watchStream) Context() context.Context { return ws.ctx }

func (ws *watchStream) SendMsg(m any) error {
	err := ws.ServerStream.SendMsg(m)
	r, _ := m.(*healthpb.HealthCheckResponse)
	down := r.GetStatus() != healthpb.HealthCheckResponse_SERVING
	ws.w.mu.Lock()
	defer ws.w.mu.Unlock()
	ws.w.open[ws] = down
	if ws.w.stopping && down {
		ws.cancel()
	}
	return err
}

func (w *watches) intercept(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if info.FullMethod != healthpb.Health_Watch_FullMethodName {
		return handler(srv, ss)
	}
	ctx, cancel := context.WithCancel(ss.Context())
	ws := &watchStream{ServerStream: ss, ctx: ctx, cancel: cancel, w: w}
	w.mu.Lock()
	if w.open == nil {
		w.open = map[*watchStream]bool{}
	}
	w.open[ws] = false
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.open, ws)
		w.mu.Unlock()
		cancel()
	}()
	return handler(srv, ws)
}

// stop ends the watches that already told their client NOT_SERVING; the
// others end once they have.
func (w *watches) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopping = true
	for ws, down := range w.open {
		if down {
			ws.cancel()
		}
	}
}

func serveErr(what string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return fmt.Errorf("serve %s: %w", what, err)
}
