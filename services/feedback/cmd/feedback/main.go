// Command feedback runs the feedback service; see the package documentation.
package main

import (
	"context"
	"log/slog"

	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/services/feedback"
)

func main() {
	var cfg feedback.Config
	serving.Main("feedback", cfg.RegisterFlags, func(ctx context.Context, logger *slog.Logger) error {
		return feedback.Run(ctx, cfg, logger)
	})
}
