package serving

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/recsys/recsys/libs/config"
	"github.com/recsys/recsys/libs/telemetry"
)

// Main is the whole main function of a binary: it parses flags (after
// register has added the binary's own) with environment overrides, builds
// the JSON logger and the trace pipeline, runs run until SIGTERM or
// interrupt cancels its context, and exits once: 0 on a clean stop, 1 on an
// error, 2 on bad flags.
func Main(name string, register func(fs *flag.FlagSet), run func(ctx context.Context, logger *slog.Logger) error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	register(fs)
	if err := parseFlags(fs, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	logger, err := telemetry.NewLogger(os.Stderr, name, *level)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	shutdownTracing, err := telemetry.SetupTracing(ctx, name)
	if err != nil {
		logger.Error("exit", "err", err)
		os.Exit(2)
	}
	err = run(ctx, logger)
	stop()
	flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ferr := shutdownTracing(flushCtx); ferr != nil {
		logger.Warn("flush traces", "err", ferr)
	}
	if err != nil {
		logger.Error("exit", "err", err)
		cancel()
		os.Exit(1)
	}
}

// parseFlags reads args (and the environment) into fs. A service takes
// flags only: an argument left over (a flag mistyped without its dash)
// would otherwise be ignored and the service run on its defaults.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := config.Parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: this command takes flags only, as -name=value (see -h)", fs.Arg(0))
	}
	return nil
}
