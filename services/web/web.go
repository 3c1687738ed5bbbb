// Package web serves the browser UI and, as the local edge, mounts every
// service's REST API and gRPC-Web under one origin (docs/architecture.md, "Services, contracts and ports"): REST
// through a grpc-gateway that calls each service over gRPC, gRPC-Web by
// passing each service's calls on to its HTTP port.
//
// The UI (ui/src, TypeScript over gRPC-Web, bundled into ui/dist by make
// ui) is embedded in the binary.
package web

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/recsys/recsys/libs/servicemap"
	"github.com/recsys/recsys/libs/serving"
)

//go:embed ui
var ui embed.FS

// Upstream is where one service listens.
type Upstream struct {
	GRPC string // host:port of its gRPC server (REST is translated to it)
	HTTP string // host:port of its HTTP server (gRPC-Web is passed to it)
}

// Config is the service's whole configuration.
type Config struct {
	Serving serving.Config
	Client  serving.ClientConfig
	// Upstreams by service name; a service without an address is not mounted.
	Upstreams map[string]*Upstream
}

// upstreams are the services the edge mounts: those of the service table
// with a public API, whose REST handlers it serves and whose gRPC-Web
// paths (/<package>.<Service>/<Method>) it passes on.
func upstreams() []servicemap.Service {
	var out []servicemap.Service
	for _, s := range servicemap.All() {
		if s.Package != "" {
			out = append(out, s)
		}
	}
	return out
}

// RegisterFlags adds the service's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	// Default ports: web's row of the service table. 8080 is the UI and the
	// edge; the gRPC port serves health for probes.
	svc := servicemap.Of(servicemap.Web)
	c.Serving.RegisterFlags(fs, svc.GRPCPort, svc.HTTPPort)
	c.Upstreams = map[string]*Upstream{}
	for _, u := range upstreams() {
		up := &Upstream{}
		name := string(u.Name)
		c.Upstreams[name] = up
		fs.StringVar(&up.GRPC, name+"-grpc", u.GRPCAddr(), name+" gRPC address (empty: do not mount)")
		fs.StringVar(&up.HTTP, name+"-http", u.HTTPAddr(), name+" HTTP address for gRPC-Web (empty: do not mount)")
	}
}

// Run serves until ctx is done.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	// The edge is what browsers call: under TLS it serves HTTPS without
	// asking them for a client certificate (the services behind it do).
	cfg.Serving.PublicHTTP = true
	srv, err := serving.New(cfg.Serving, logger)
	if err != nil {
		return err
	}
	cfg.Client.TLS = cfg.Serving.TLS
	edge, closeEdge, err := newEdge(cfg)
	if err != nil {
		srv.Close()
		return err
	}
	defer closeEdge()
	srv.Handle("/", edge)
	return srv.Run(ctx)
}

func newEdge(cfg Config) (http.Handler, func(), error) {
	gateway := serving.NewGatewayMux()
	var closers []func() error
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	// gRPC-Web is passed on to each service's HTTP port: over HTTPS with
	// the edge's client certificate when the platform runs with TLS.
	scheme, transport := "http", http.DefaultTransport
	if cfg.Client.TLS.Enabled() {
		tc, err := cfg.Client.TLS.ClientConfig(cfg.Client.ServerName)
		if err != nil {
			return nil, nil, fmt.Errorf("edge TLS: %w", err)
		}
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = tc
		t.ForceAttemptHTTP2 = true
		scheme, transport = "https", t
	}
	webProxies := map[string]http.Handler{}
	for _, u := range upstreams() {
		up := cfg.Upstreams[string(u.Name)]
		if up == nil {
			continue
		}
		if up.GRPC != "" {
			conn, err := serving.Dial(up.GRPC, cfg.Client)
			if err != nil {
				closeAll()
				return nil, nil, err
			}
			closers = append(closers, conn.Close)
			for _, register := range u.Gateway {
				if err := register(context.Background(), gateway, conn); err != nil {
					closeAll()
					return nil, nil, fmt.Errorf("mount %s REST: %w", u.Name, err)
				}
			}
		}
		if up.HTTP != "" {
			p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: scheme, Host: up.HTTP})
			p.Transport = transport
			webProxies["/"+u.Package+"."] = p
		}
	}
	static, err := fs.Sub(ui, "ui")
	if err != nil {
		return nil, nil, err
	}
	files := http.FileServerFS(static)
	return securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for prefix, p := range webProxies {
			if strings.HasPrefix(r.URL.Path, prefix) {
				p.ServeHTTP(w, r)
				return
			}
		}
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			gateway.ServeHTTP(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})), closeAll, nil
}

// ContentSecurityPolicy is the UI's policy: scripts, styles, fonts and
// calls from this origin only (the edge serves the API under it too), no
// inline script or style (ui/boot.js and the bundle set sizes through the
// CSSOM), no plugins, no framing, no <base> rewriting. The data: image is
// the page's empty favicon.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// securityHeaders sets the browser hardening headers on every answer of the
// edge: the UI's files and the APIs alike (a JSON error must not be
// sniffed into HTML either).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		// strict-origin, not no-referrer: under no-referrer browsers send
		// "Origin: null" on the UI's own gRPC-Web POSTs, which the
		// origin allow-list would then have to accept.
		h.Set("Referrer-Policy", "strict-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if r.TLS != nil {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		next.ServeHTTP(w, r)
	})
}
