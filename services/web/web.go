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

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/serving"
)

// Default ports: 8080 for the UI and edge (docs/architecture.md, "Services, contracts and ports"); 9090 serves gRPC
// health for probes.
const (
	DefaultGRPCPort = 9090
	DefaultHTTPPort = 8080
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

// upstreams are the services the edge mounts, with their REST handlers and
// the gRPC package prefix of their gRPC-Web paths.
var upstreams = []struct {
	name      string
	grpcPort  int
	httpPort  int
	pkg       string
	registrar []serving.GatewayRegistrar
}{
	{"userfeatures", 9091, 8091, "recsys.userfeatures.v1.", []serving.GatewayRegistrar{userfeaturesv1.RegisterUserFeatureServiceHandler}},
	{"itemfeatures", 9092, 8092, "recsys.itemfeatures.v1.", []serving.GatewayRegistrar{itemfeaturesv1.RegisterItemFeatureServiceHandler}},
	{"ranking", 9093, 8093, "recsys.ranking.v1.", []serving.GatewayRegistrar{
		rankingv1.RegisterRankingServiceHandler, rankingv1.RegisterInferenceServiceHandler, rankingv1.RegisterModelServiceHandler,
	}},
	{"feedback", 9094, 8094, "recsys.feedback.v1.", []serving.GatewayRegistrar{feedbackv1.RegisterFeedbackServiceHandler}},
}

// RegisterFlags adds the service's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Serving.RegisterFlags(fs, DefaultGRPCPort, DefaultHTTPPort)
	c.Upstreams = map[string]*Upstream{}
	for _, u := range upstreams {
		up := &Upstream{}
		c.Upstreams[u.name] = up
		fs.StringVar(&up.GRPC, u.name+"-grpc", fmt.Sprintf("localhost:%d", u.grpcPort), u.name+" gRPC address (empty: do not mount)")
		fs.StringVar(&up.HTTP, u.name+"-http", fmt.Sprintf("localhost:%d", u.httpPort), u.name+" HTTP address for gRPC-Web (empty: do not mount)")
	}
}

// Run serves until ctx is done.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
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
	webProxies := map[string]http.Handler{}
	for _, u := range upstreams {
		up := cfg.Upstreams[u.name]
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
			for _, register := range u.registrar {
				if err := register(context.Background(), gateway, conn); err != nil {
					closeAll()
					return nil, nil, fmt.Errorf("mount %s REST: %w", u.name, err)
				}
			}
		}
		if up.HTTP != "" {
			webProxies["/"+u.pkg] = httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: up.HTTP})
		}
	}
	static, err := fs.Sub(ui, "ui")
	if err != nil {
		return nil, nil, err
	}
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	}), closeAll, nil
}
