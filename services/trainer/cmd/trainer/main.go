// Command trainer trains the ranking model and publishes it; see the
// package documentation.
package main

import (
	"context"
	"log/slog"

	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/services/trainer"
)

func main() {
	var cfg trainer.Config
	serving.Main("trainer", cfg.RegisterFlags, func(ctx context.Context, logger *slog.Logger) error {
		return trainer.Run(ctx, cfg, logger)
	})
}
