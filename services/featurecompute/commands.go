package featurecompute

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/recsys/recsys/libs/config"
	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/progress"
	"github.com/recsys/recsys/libs/servicemap"
	"github.com/recsys/recsys/libs/telemetry"
)

// The one-off jobs are commands of the featurecompute binary
// (`featurecompute rebuild`, `featurecompute drop-generation`), not modes
// of the service: they ship in the service's image, run the same code that
// writes the features, and read the same flags and RECSYS_* variables, so
// one run beside the service (in its pod, or its compose service) finds
// its Kafka and Redis without being told.

// A job is one command's configuration: filled from its flags, checked
// with its arguments before it touches anything, then run.
type job interface {
	RegisterFlags(fs *flag.FlagSet)
	check(args []string) error
	run(ctx context.Context, logger *slog.Logger, stderr io.Writer) error
}

type command struct {
	name, args, summary string
	job                 func() job
}

func (c command) synopsis() string {
	return strings.TrimSpace("featurecompute " + c.name + " [flags] " + c.args)
}

func commands() []command {
	return []command{
		{"rebuild", "", "recompute every real-time feature from the event log into a fresh generation of keys, switch readers to it, and log the generation it replaced",
			func() job { return new(RebuildCommand) }},
		{"drop-generation", "GENERATION", "delete every key of a generation readers have left (one a rebuild replaced; \"default\" is the first, unnamed one)",
			func() job { return new(DropCommand) }},
	}
}

// RunCommand runs `featurecompute NAME [flags] [arguments]` (args is NAME
// and what follows it) and returns the process's exit status: 0 when the
// job is done, 1 when it failed, 2 for bad input (an unknown command, a
// bad flag or argument), with the reason on stderr.
func RunCommand(ctx context.Context, args []string, stderr io.Writer) int {
	name := args[0]
	if name == "help" {
		usage(stderr)
		return 0
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == name {
			cmd = &c
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "featurecompute: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	fs := flag.NewFlagSet("featurecompute "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: %s\n\n%s.\n\nFlags (each also read from RECSYS_<NAME>):\n", cmd.synopsis(), cmd.summary)
		fs.PrintDefaults()
	}
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	j := cmd.job()
	j.RegisterFlags(fs)
	if err := config.Parse(fs, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2 // the flag package has said what and shown the usage
	}
	logger, err := telemetry.NewLogger(stderr, "featurecompute", *level)
	if err == nil {
		err = j.check(fs.Args())
	}
	if err != nil {
		fmt.Fprintf(stderr, "featurecompute %s: %v\n", name, err)
		return 2
	}
	if err := j.run(ctx, logger.With("command", name), stderr); err != nil {
		logger.Error("exit", "command", name, "err", err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage:\n  featurecompute [flags]        run the stream processor (featurecompute -h lists its flags)\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %s\n        %s\n", c.synopsis(), c.summary)
	}
	fmt.Fprintf(w, "Run featurecompute COMMAND -h for a command's flags.\n")
}

// registerLogFlags adds the flags that name the event log: the service and
// the rebuild share them.
func registerLogFlags(fs *flag.FlagSet, kafka *eventstream.Config, topic *string) {
	kafka.RegisterFlags(fs, []string{servicemap.DefaultKafka}, "comma-separated Kafka bootstrap brokers")
	fs.StringVar(topic, "topic", eventstream.FeedbackTopic, "topic of the feedback events")
}

// registerStoreFlags adds the flags that name the feature store: the
// service and every command share them.
func registerStoreFlags(fs *flag.FlagSet, redis *featurestore.Config, namespace *string) {
	redis.RegisterFlags(fs)
	fs.StringVar(namespace, "redis-namespace", "", "prefix of every feature key")
}

// RebuildCommand is `featurecompute rebuild`: Rebuild from the flags.
type RebuildCommand struct {
	Kafka     eventstream.Config
	Topic     string
	Redis     featurestore.Config
	Namespace string
	// From is where the replay starts: "all", an RFC 3339 time, or
	// partition=offset pairs.
	From string

	rc RebuildConfig // From, parsed by check
}

// RegisterFlags adds the command's flags to fs.
func (c *RebuildCommand) RegisterFlags(fs *flag.FlagSet) {
	registerLogFlags(fs, &c.Kafka, &c.Topic)
	registerStoreFlags(fs, &c.Redis, &c.Namespace)
	fs.StringVar(&c.From, "from", "all", "where the replay starts: \"all\" (the whole log), an RFC 3339 time such as 2026-11-28T00:00:00Z, or partition=offset pairs such as 0=1200,1=980 (partitions not named start at their first offset)")
}

func (c *RebuildCommand) check(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q: name where the replay starts with -from", args)
	}
	if len(c.Kafka.Brokers) == 0 {
		return errors.New("-kafka: at least one broker is required")
	}
	kc, err := c.Kafka.Cluster()
	if err != nil {
		return err
	}
	rc, err := parseRebuild(c.From)
	if err != nil {
		return err
	}
	rc.Kafka, rc.Topic = kc, c.Topic
	// Readers follow a switch within a second (featurestore.Store.Follow).
	rc.Settle = 3 * time.Second
	c.rc = rc
	return nil
}

func (c *RebuildCommand) run(ctx context.Context, logger *slog.Logger, _ io.Writer) error {
	store, closeRedis, err := c.Redis.Open(c.Namespace)
	if err != nil {
		return err
	}
	defer closeRedis()
	if err := store.Refresh(ctx); err != nil {
		return fmt.Errorf("read the active feature generation: %w", err)
	}
	res, err := Rebuild(ctx, c.rc, store, logger)
	if err != nil {
		return err
	}
	logger.Info("rebuild done", "generation", res.Generation, "static_entities", res.Static, "replayed", res.Replayed, "caught_up", res.CaughtUp,
		"old_keys", "once nothing reads it, delete the previous generation with: featurecompute drop-generation "+generationArg(res.Previous))
	return nil
}

// parseRebuild reads -from: "all", an RFC 3339 time, or partition=offset
// pairs.
func parseRebuild(v string) (RebuildConfig, error) {
	var rc RebuildConfig
	if v == "all" {
		return rc, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		rc.From = t
		return rc, nil
	}
	if strings.Contains(v, "=") {
		rc.FromOffsets = eventstream.Offsets{}
		for pair := range strings.SplitSeq(v, ",") {
			ps, offs, _ := strings.Cut(pair, "=")
			p, err1 := strconv.Atoi(ps)
			off, err2 := strconv.ParseInt(offs, 10, 64)
			if err1 != nil || err2 != nil || p < 0 || off < 0 {
				return rc, fmt.Errorf("-from %q: %q is not partition=offset (two whole numbers ≥ 0, such as 0=1200)", v, pair)
			}
			if _, dup := rc.FromOffsets[p]; dup {
				return rc, fmt.Errorf("-from %q: partition %d is given twice", v, p)
			}
			rc.FromOffsets[p] = off
		}
		return rc, nil
	}
	return rc, fmt.Errorf("-from %q: want \"all\", an RFC 3339 time such as 2026-11-28T00:00:00Z, or partition=offset pairs such as 0=1200,1=980", v)
}

// generationArg is how drop-generation names a generation.
func generationArg(gen string) string {
	if gen == "" {
		return "default"
	}
	return gen
}

// DropCommand is `featurecompute drop-generation GENERATION`.
type DropCommand struct {
	Redis     featurestore.Config
	Namespace string

	generation string // the argument, as drop-generation names it
}

// RegisterFlags adds the command's flags to fs.
func (c *DropCommand) RegisterFlags(fs *flag.FlagSet) {
	registerStoreFlags(fs, &c.Redis, &c.Namespace)
}

func (c *DropCommand) check(args []string) error {
	if len(args) != 1 || args[0] == "" {
		return fmt.Errorf("want one argument, the generation to delete (flags go before it), got %q", args)
	}
	c.generation = args[0]
	return nil
}

func (c *DropCommand) run(ctx context.Context, logger *slog.Logger, stderr io.Writer) error {
	store, closeRedis, err := c.Redis.Open(c.Namespace)
	if err != nil {
		return err
	}
	defer closeRedis()
	return dropGeneration(ctx, store, c.generation, logger, stderr)
}

// dropGeneration runs DropGeneration on the generation that name gives
// (see generationArg), with a progress bar on w.
func dropGeneration(ctx context.Context, store *featurestore.Store, name string, logger *slog.Logger, w io.Writer) error {
	gen := name
	if name == "default" {
		gen = ""
	}
	bar := progress.New(w, "dropping generation "+name, "keys", 0)
	n, err := store.DropGeneration(ctx, gen, func(k int) { bar.Add(int64(k)) })
	if err != nil {
		return fmt.Errorf("drop generation %s: %w", name, err)
	}
	bar.Done()
	logger.Info("generation dropped", "generation", name, "keys_deleted", n)
	return nil
}
