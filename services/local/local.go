// Package local runs the whole platform in one process for make run: every
// service on its own default port, and the web UI with the local edge on
// :8080 (docs/architecture.md, "Services, contracts and ports").
//
// Each service keeps its own flags under its name: -ranking.grpc-addr,
// environment RECSYS_RANKING_GRPC_ADDR.
package local

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/recsys/recsys/libs/certs"
	"github.com/recsys/recsys/libs/config"
	"github.com/recsys/recsys/libs/embedded"
	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/servicemap"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/services/featurecompute"
	"github.com/recsys/recsys/services/feedback"
	"github.com/recsys/recsys/services/itemfeatures"
	"github.com/recsys/recsys/services/ranking"
	"github.com/recsys/recsys/services/simulator"
	"github.com/recsys/recsys/services/trainer"
	"github.com/recsys/recsys/services/userfeatures"
	"github.com/recsys/recsys/services/web"
)

// Config holds every service's configuration.
type Config struct {
	// Redis is the Redis every service uses (featurestore.DialHelp), or
	// embedded[://host:port] for the embedded server started here; with
	// its credentials and TLS, if any.
	Redis featurestore.Config
	// Kafka is the brokers every service uses, or embedded[://host:port]
	// for the embedded broker started here; with its TLS and SASL, if any.
	Kafka eventstream.Config
	// TLS turns on mutual TLS on every hop, with certificates made for the
	// run (libs/certs).
	TLS    bool
	TLSDir string
	// Simulate runs gentle background traffic from simulated users.
	Simulate     bool
	simulatorTLS serving.TLSFiles
	SimulateRate float64
	WorldSeed    uint64

	UserFeatures   userfeatures.Config
	ItemFeatures   itemfeatures.Config
	Ranking        ranking.Config
	Feedback       feedback.Config
	FeatureCompute featurecompute.Config
	Web            web.Config
}

// service is one service of the platform, as the launcher sees it.
type service struct {
	name     string
	serving  *serving.Config // its network settings, inside the Config
	register func(*flag.FlagSet)
	run      func(context.Context, *slog.Logger) error
}

// services are the servers of the service table (libs/servicemap), each
// with its configuration and Run; the table gives each its default ports.
func (c *Config) services() []service {
	s := func(name servicemap.Name, serving *serving.Config, register func(*flag.FlagSet), run func(context.Context, *slog.Logger) error) service {
		return service{string(name), serving, register, run}
	}
	return []service{
		s(servicemap.UserFeatures, &c.UserFeatures.Serving, c.UserFeatures.RegisterFlags, func(ctx context.Context, l *slog.Logger) error { return userfeatures.Run(ctx, c.UserFeatures, l) }),
		s(servicemap.ItemFeatures, &c.ItemFeatures.Serving, c.ItemFeatures.RegisterFlags, func(ctx context.Context, l *slog.Logger) error { return itemfeatures.Run(ctx, c.ItemFeatures, l) }),
		s(servicemap.Ranking, &c.Ranking.Serving, c.Ranking.RegisterFlags, func(ctx context.Context, l *slog.Logger) error { return ranking.Run(ctx, c.Ranking, l) }),
		s(servicemap.Feedback, &c.Feedback.Serving, c.Feedback.RegisterFlags, func(ctx context.Context, l *slog.Logger) error { return feedback.Run(ctx, c.Feedback, l) }),
		s(servicemap.FeatureCompute, &c.FeatureCompute.Serving, c.FeatureCompute.RegisterFlags, func(ctx context.Context, l *slog.Logger) error { return featurecompute.Run(ctx, c.FeatureCompute, l) }),
		s(servicemap.Web, &c.Web.Serving, c.Web.RegisterFlags, func(ctx context.Context, l *slog.Logger) error { return web.Run(ctx, c.Web, l) }),
	}
}

// shared are the flags set once for all services.
var shared = map[string]bool{
	"redis": true, "redis-timeout": true, "redis-user": true, "redis-password": true, "redis-tls": true, "redis-ca": true, "redis-cert": true, "redis-key": true,
	"kafka": true, "kafka-tls": true, "kafka-ca": true, "kafka-cert": true, "kafka-key": true, "kafka-sasl-user": true, "kafka-sasl-password": true,
}

// The embedded servers' default addresses: the standard ports, so that
// tools run beside make run (ingest, the trainer's -from-log) reach them
// with their own defaults.
var (
	embeddedRedis = fmt.Sprintf("embedded://127.0.0.1:%d", servicemap.RedisPort)
	embeddedKafka = fmt.Sprintf("embedded://127.0.0.1:%d", servicemap.KafkaPort)
)

// The demo world of make run: small enough to train in seconds.
const (
	worldUsers        = 1000
	worldItems        = 400
	worldInteractions = 30000
)

// RegisterFlags adds every service's flags to fs, each under its name, and
// the shared ones once.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Redis.RegisterFlags(fs)
	serving.SetDefault(fs, "redis", embeddedRedis)
	fs.Lookup("redis").Usage = "embedded[://host:port] for an in-process Redis-compatible server, or a real one. " + featurestore.DialHelp
	c.Kafka.RegisterFlags(fs, []string{embeddedKafka}, "comma-separated Kafka brokers, or embedded[://host:port] for an in-process Kafka-compatible broker (on a free port if that one is taken)")
	fs.BoolVar(&c.TLS, "tls", false, "mutual TLS between all services, with a CA and certificates made for this run in -tls-dir")
	fs.StringVar(&c.TLSDir, "tls-dir", ".cache/certs", "where -tls writes its CA and certificates")
	fs.BoolVar(&c.Simulate, "simulate", true, "seed a demo world and run gentle background traffic from its simulated users")
	fs.Float64Var(&c.SimulateRate, "simulate-rate", 2, "simulated sessions per second")
	fs.Uint64Var(&c.WorldSeed, "world-seed", 1, "seed of the demo world")
	for _, s := range c.services() {
		own := flag.NewFlagSet(s.name, flag.ContinueOnError)
		s.register(own)
		own.VisitAll(func(f *flag.Flag) {
			if !shared[f.Name] {
				fs.Var(f.Value, s.name+"."+f.Name, f.Usage)
			}
		})
	}
}

// useTLS issues a CA and one certificate per service into dir and points
// every service (and the demo's simulated users) at them.
func useTLS(cfg *Config, dir string) error {
	names := []string{"simulator"}
	for _, s := range cfg.services() {
		names = append(names, s.name)
	}
	if err := certs.WriteFiles(dir, names, 30*24*time.Hour); err != nil {
		return fmt.Errorf("certificates for -tls: %w", err)
	}
	files := func(name string) serving.TLSFiles {
		return serving.TLSFiles{CertFile: filepath.Join(dir, name+".pem"), KeyFile: filepath.Join(dir, name+"-key.pem"), CAFile: filepath.Join(dir, "ca.pem")}
	}
	for _, s := range cfg.services() {
		s.serving.TLS = files(s.name)
	}
	cfg.simulatorTLS = files("simulator")
	return nil
}

// printEndpoints tells a person where everything is.
func printEndpoints(w io.Writer, cfg Config) {
	scheme := "http"
	if cfg.TLS {
		scheme = "https" // the HTTP ports speak HTTPS with the run's certificates
	}
	fmt.Fprintf(w, "\nrecsys is starting:\n  web UI and edge (REST, gRPC-Web)  %s://%s\n", scheme, dialable(cfg.Web.Serving.HTTPAddr))
	for _, s := range cfg.services() {
		if s.name != "web" {
			fmt.Fprintf(w, "  %-15s gRPC %-16s HTTP %s://%s (/metrics, /readyz, /openapi.json)\n", s.name, dialable(s.serving.GRPCAddr), scheme, dialable(s.serving.HTTPAddr))
		}
	}
	fmt.Fprintf(w, "  Redis %s   Kafka %s\n\n", cfg.Redis.Addr, cfg.Kafka.Brokers.String())
}

// embeddedAddr reports whether spec (a -redis or -kafka value) asks for an
// embedded server, and on which address ("": a free port).
func embeddedAddr(spec string) (string, bool) {
	if spec == "embedded" {
		return "", true
	}
	addr, ok := strings.CutPrefix(spec, "embedded://")
	return addr, ok
}

// dialable turns a listen address (":50051") into one to dial.
func dialable(listen string) string {
	if strings.HasPrefix(listen, ":") {
		return "localhost" + listen
	}
	return listen
}

// Run runs every service until ctx is done or one of them fails, which
// stops the others.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := initialModel(ctx, cfg, logger); err != nil {
		return fmt.Errorf("first model: %w", err)
	}
	if addr, ok := embeddedAddr(cfg.Redis.Addr); ok {
		m, err := embedded.StartRedis(addr)
		if err != nil {
			return fmt.Errorf("%w (pass a free address, e.g. -redis=embedded, or a real Redis's host:port)", err)
		}
		defer m.Close()
		logger.Info("embedded Redis-compatible server started", "addr", m.Addr())
		cfg.Redis.Addr = m.Addr()
	}
	if addr, ok := embeddedAddr(cfg.Kafka.Brokers.String()); ok {
		got, stop, err := embedded.StartKafka(addr)
		if embedded.InUse(err) {
			// Most likely a real broker: leave it alone and say where
			// the embedded one went.
			logger.Warn("the embedded Kafka's port is taken; starting it on a free port", "asked", addr, "err", err)
			got, stop, err = embedded.StartKafka("")
		}
		if err != nil {
			return fmt.Errorf("%w (pass a free address or a real broker)", err)
		}
		defer stop()
		logger.Info("embedded Kafka-compatible broker started", "addr", got)
		cfg.Kafka.Brokers = config.StringList{got}
	}
	if cfg.TLS {
		if err := useTLS(&cfg, cfg.TLSDir); err != nil {
			return err
		}
		logger.Info("mutual TLS on every gRPC hop, HTTPS on every HTTP port", "certs", cfg.TLSDir)
	}
	cfg.UserFeatures.Redis = cfg.Redis
	cfg.ItemFeatures.Redis = cfg.Redis
	cfg.Feedback.Redis, cfg.Feedback.Kafka = cfg.Redis, cfg.Kafka
	cfg.FeatureCompute.Redis, cfg.FeatureCompute.Kafka = cfg.Redis, cfg.Kafka
	cfg.Ranking.Kafka = cfg.Kafka
	cfg.Ranking.UserFeatures = dialable(cfg.UserFeatures.Serving.GRPCAddr)
	cfg.Ranking.ItemFeatures = dialable(cfg.ItemFeatures.Serving.GRPCAddr)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, s := range cfg.services() {
		wg.Go(func() {
			err := s.run(ctx, logger.With("component", s.name))
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
				mu.Unlock()
				cancel()
			}
		})
	}
	printEndpoints(os.Stderr, cfg)
	if cfg.Simulate {
		wg.Go(func() {
			if err := demo(ctx, cfg, logger); err != nil && ctx.Err() == nil {
				logger.Warn("demo traffic stopped", "err", err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// initialModel trains and publishes a first model on the demo world when
// the registry has none, so ranking has something to serve.
func initialModel(ctx context.Context, cfg Config, logger *slog.Logger) error {
	dir := filepath.Join(cfg.Ranking.ModelRoot, cfg.Ranking.ModelName)
	if entries, _ := os.ReadDir(dir); slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.IsDir() && !strings.HasPrefix(e.Name(), ".") }) {
		return nil
	}
	logger.Info("the model registry is empty: training a first model on the demo world", "registry", dir)
	_, err := trainer.Train(ctx, trainer.Config{ModelRoot: cfg.Ranking.ModelRoot, ModelName: cfg.Ranking.ModelName, Version: "v1",
		WorldSeed: cfg.WorldSeed, Users: worldUsers, Items: worldItems, Interactions: worldInteractions, Epochs: 4, Dim: 16}, os.Stderr)
	return err
}

// demo seeds the demo world into the running platform and sends its
// simulated users' traffic through the public APIs.
func demo(ctx context.Context, cfg Config, logger *slog.Logger) error {
	sim := simulator.Config{Ranking: dialable(cfg.Ranking.Serving.GRPCAddr), Feedback: dialable(cfg.Feedback.Serving.GRPCAddr),
		UserFeatures: dialable(cfg.UserFeatures.Serving.GRPCAddr), ItemFeatures: dialable(cfg.ItemFeatures.Serving.GRPCAddr),
		WorldSeed: cfg.WorldSeed, Users: worldUsers, Items: worldItems, Sessions: 1 << 30, Rate: cfg.SimulateRate, Concurrency: 1, ListSize: 10,
		TLS: cfg.simulatorTLS}
	cl, closeAll, err := simulator.Dial(sim)
	if err != nil {
		return err
	}
	defer closeAll()
	w := trainer.NewWorld(cfg.WorldSeed, worldUsers, worldItems)
	for { // the services come up in parallel: retry until the seed lands
		if err = simulator.SeedWorld(ctx, cl, w); err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	// The users' past, as the first model was trained on it: with it
	// retrieval starts from each user's history, not from trending alone.
	// (After the catalogue: simulating the choices takes seconds.)
	history := w.Consumption(worldInteractions, time.Now().Add(-trainer.Cycle), trainer.Cycle, cfg.WorldSeed)
	if err := simulator.RecordHistory(ctx, cl, history); err != nil {
		return err
	}
	logger.Info("demo world seeded; simulated users are browsing", "users", worldUsers, "items", worldItems, "interactions", len(history), "sessions_per_second", cfg.SimulateRate)
	_, err = simulator.Simulate(ctx, cl, w, sim, uint64(time.Now().UnixNano()), io.Discard)
	return err
}
