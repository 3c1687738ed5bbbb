// Command featurecompute runs the featurecompute service (see the package
// documentation), or one of its one-off jobs:
//
//	featurecompute [flags]                            the stream processor
//	featurecompute rebuild [flags]                    recompute the features from the log
//	featurecompute drop-generation [flags] GENERATION delete a generation's keys
//	featurecompute help                               list the commands
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/services/featurecompute"
)

func main() {
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		code := featurecompute.RunCommand(ctx, os.Args[1:], os.Stderr)
		stop()
		os.Exit(code)
	}
	if len(os.Args) > 1 && slices.Contains([]string{"-h", "-help", "--help"}, os.Args[1]) {
		featurecompute.RunCommand(context.Background(), []string{"help"}, os.Stderr) // the commands, then the service's flags
	}
	var cfg featurecompute.Config
	serving.Main("featurecompute", cfg.RegisterFlags, func(ctx context.Context, logger *slog.Logger) error {
		return featurecompute.Run(ctx, cfg, logger)
	})
}
