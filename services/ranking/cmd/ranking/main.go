// Command ranking runs the ranking service; see the package documentation.
package main

import (
	"context"
	"log/slog"

	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/services/ranking"
)

func main() {
	var cfg ranking.Config
	serving.Main("ranking", cfg.RegisterFlags, func(ctx context.Context, logger *slog.Logger) error {
		return ranking.Run(ctx, cfg, logger)
	})
}
