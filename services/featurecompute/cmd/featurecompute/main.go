// Command featurecompute runs the featurecompute service; see the package documentation.
package main

import (
	"context"
	"log/slog"

	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/services/featurecompute"
)

func main() {
	var cfg featurecompute.Config
	serving.Main("featurecompute", cfg.RegisterFlags, func(ctx context.Context, logger *slog.Logger) error {
		return featurecompute.Run(ctx, cfg, logger)
	})
}
