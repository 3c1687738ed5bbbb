// Command userfeatures runs the userfeatures service; see the package documentation.
package main

import (
	"context"
	"log/slog"

	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/services/userfeatures"
)

func main() {
	var cfg userfeatures.Config
	serving.Main("userfeatures", cfg.RegisterFlags, func(ctx context.Context, logger *slog.Logger) error {
		return userfeatures.Run(ctx, cfg, logger)
	})
}
