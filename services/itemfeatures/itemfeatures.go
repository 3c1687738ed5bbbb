// Package itemfeatures serves item features and trending items (DESIGN.md §3–4).
//
// Not built yet: every RPC answers Unimplemented until the feature-store
// issue lands.
package itemfeatures

import (
	"context"
	"flag"
	"log/slog"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	"github.com/recsys/recsys/libs/serving"
)

// Default ports (DESIGN.md §8).
const (
	DefaultGRPCPort = 9092
	DefaultHTTPPort = 8092
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
	itemfeaturesv1.RegisterItemFeatureServiceServer(srv.GRPC(), itemfeaturesv1.UnimplementedItemFeatureServiceServer{})
	if err := srv.Publish(itemfeaturesv1.File_recsys_itemfeatures_v1_itemfeatures_proto, itemfeaturesv1.RegisterItemFeatureServiceHandler); err != nil {
		srv.Close()
		return err
	}
	return srv.Run(ctx)
}
