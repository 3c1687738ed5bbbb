// Package userfeatures serves user features (DESIGN.md §3–4).
//
// Not built yet: every RPC answers Unimplemented until the feature-store
// issue lands.
package userfeatures

import (
	"context"
	"flag"
	"log/slog"

	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/serving"
)

// Default ports (DESIGN.md §8).
const (
	DefaultGRPCPort = 9091
	DefaultHTTPPort = 8091
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
	userfeaturesv1.RegisterUserFeatureServiceServer(srv.GRPC(), userfeaturesv1.UnimplementedUserFeatureServiceServer{})
	if err := srv.Publish(userfeaturesv1.File_recsys_userfeatures_v1_userfeatures_proto, userfeaturesv1.RegisterUserFeatureServiceHandler); err != nil {
		srv.Close()
		return err
	}
	return srv.Run(ctx)
}
