// Package ranking ranks items with an ONNX model and reports the model
// registry (DESIGN.md §3, §6, §7).
//
// Not built yet: every RPC answers Unimplemented until the ranking issue
// lands.
package ranking

import (
	"context"
	"flag"
	"log/slog"

	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	"github.com/recsys/recsys/libs/serving"
)

// Default ports (DESIGN.md §8).
const (
	DefaultGRPCPort = 9093
	DefaultHTTPPort = 8093
)

// Config is the service's whole configuration.
type Config struct {
	Serving serving.Config
}

// RegisterFlags adds the service's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Serving.RegisterFlags(fs, DefaultGRPCPort, DefaultHTTPPort)
}

// Run serves until ctx is done.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	srv, err := serving.New(cfg.Serving, logger)
	if err != nil {
		return err
	}
	rankingv1.RegisterRankingServiceServer(srv.GRPC(), rankingv1.UnimplementedRankingServiceServer{})
	rankingv1.RegisterInferenceServiceServer(srv.GRPC(), rankingv1.UnimplementedInferenceServiceServer{})
	rankingv1.RegisterModelServiceServer(srv.GRPC(), rankingv1.UnimplementedModelServiceServer{})
	if err := srv.Publish(rankingv1.File_recsys_ranking_v1_ranking_proto,
		rankingv1.RegisterRankingServiceHandler,
		rankingv1.RegisterInferenceServiceHandler,
		rankingv1.RegisterModelServiceHandler,
	); err != nil {
		srv.Close()
		return err
	}
	return srv.Run(ctx)
}
