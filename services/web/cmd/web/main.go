// Command web serves the browser UI and the local edge; see the package
// documentation.
package main

import (
	"context"
	"log/slog"

	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/services/web"
)

func main() {
	var cfg web.Config
	serving.Main("web", cfg.RegisterFlags, func(ctx context.Context, logger *slog.Logger) error {
		return web.Run(ctx, cfg, logger)
	})
}
