// Package featurecompute is the stream processor that turns feedback events into
// real-time features (DESIGN.md §5). Its ports serve health, readiness and
// metrics only.
//
// Not built yet: the consumer arrives with the feedback-loop issue.
package featurecompute

import (
	"context"
	"flag"
	"log/slog"

	"github.com/recsys/recsys/libs/serving"
)

// Default ports (DESIGN.md §8).
const (
	DefaultGRPCPort = 9095
	DefaultHTTPPort = 8095
)

// Config is the service's whole configuration.
type Config struct {
	Serving serving.Config
}

// RegisterFlags adds the service's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Serving.RegisterFlags(fs, DefaultGRPCPort, DefaultHTTPPort)
}

// Run serves until ctx is done.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	srv, err := serving.New(cfg.Serving, logger)
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}
