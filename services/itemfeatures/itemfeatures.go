// Package itemfeatures serves item features and trending items from the
// Redis feature store (docs/architecture.md, "Features").
package itemfeatures

import (
	"context"
	"flag"
	"log/slog"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
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
	svc := servicemap.Of(servicemap.ItemFeatures)
	c.Config.RegisterFlags(fs, svc.GRPCPort, svc.HTTPPort)
}

// Run serves until ctx is done.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	return featureservice.Run(ctx, cfg.Config, logger, func(srv *serving.Server, store *featurestore.Store, m *featureservice.Metrics) error {
		itemfeaturesv1.RegisterItemFeatureServiceServer(srv.GRPC(), &featureservice.ItemServer{Store: store, Metrics: m})
		return srv.Publish(itemfeaturesv1.File_recsys_itemfeatures_v1_itemfeatures_proto, itemfeaturesv1.RegisterItemFeatureServiceHandler)
	})
}
