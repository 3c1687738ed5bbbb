// Command itemfeatures runs the itemfeatures service; see the package documentation.
package main

import (
	"context"
	"log/slog"

	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/services/itemfeatures"
)

func main() {
	var cfg itemfeatures.Config
	serving.Main("itemfeatures", cfg.RegisterFlags, func(ctx context.Context, logger *slog.Logger) error {
		return itemfeatures.Run(ctx, cfg, logger)
	})
}
