// Command recsys runs the whole platform in one process (make run); see the
// package documentation of services/local.
package main

import (
	"context"
	"log/slog"

	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/services/local"
)

func main() {
	var cfg local.Config
	serving.Main("recsys", cfg.RegisterFlags, func(ctx context.Context, logger *slog.Logger) error {
		return local.Run(ctx, cfg, logger)
	})
}
