// Package userfeatures serves user features from the Redis feature store
// (docs/architecture.md, "Features"): profiles ingested in batch and the real-time features
// the stream processor writes.
package userfeatures

import (
	"context"
	"flag"
	"log/slog"

	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/featureservice"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/servicemap"
	"github.com/recsys/recsys/libs/serving"
)

// Config is the service's whole configuration.
type Config struct{ featureservice.Config }

// RegisterFlags adds the service's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	// Default ports: this server's row of the service table.
	svc := servicemap.Of(servicemap.UserFeatures)
	c.Config.RegisterFlags(fs, svc.GRPCPort, svc.HTTPPort)
}

// Run serves until ctx is done.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	return featureservice.Run(ctx, cfg.Config, logger, func(srv *serving.Server, store *featurestore.Store, m *featureservice.Metrics) error {
		userfeaturesv1.RegisterUserFeatureServiceServer(srv.GRPC(), &featureservice.UserServer{Store: store, Metrics: m})
		return srv.Publish(userfeaturesv1.File_recsys_userfeatures_v1_userfeatures_proto, userfeaturesv1.RegisterUserFeatureServiceHandler)
	})
}
