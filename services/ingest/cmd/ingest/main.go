// Command ingest loads users, items and ratings into the feature store; see
// the package documentation.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/services/ingest"
)

func main() {
	var cfg ingest.Config
	serving.Main("ingest", cfg.RegisterFlags, func(ctx context.Context, _ *slog.Logger) error {
		_, err := ingest.Run(ctx, cfg, os.Stderr)
		return err
	})
}
