// Package feedback records user feedback into the event stream and reports
// experiments (DESIGN.md §3, §7).
//
// Not built yet: every RPC answers Unimplemented until the feedback-loop
// issue lands.
package feedback

import (
	"context"
	"flag"
	"log/slog"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/serving"
)

// Default ports (DESIGN.md §8).
const (
	DefaultGRPCPort = 9094
	DefaultHTTPPort = 8094
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
	feedbackv1.RegisterFeedbackServiceServer(srv.GRPC(), feedbackv1.UnimplementedFeedbackServiceServer{})
	if err := srv.Publish(feedbackv1.File_recsys_feedback_v1_feedback_proto, feedbackv1.RegisterFeedbackServiceHandler); err != nil {
		srv.Close()
		return err
	}
	return srv.Run(ctx)
}
