// Package ranking ranks items for users with ONNX models (DESIGN.md §3, §6,
// §7): Rank and Recommend, raw Predict, and ListModels over the model
// registry; sticky experiment arms; and the feature log of what was served.
//
// Features come from the user and item feature services over gRPC, in
// parallel, within -feature-timeout: when one is slow or down the ranking
// uses defaults and says so (features_degraded); when no model is ready it
// answers in trending order (model_fallback). Neither fails the request.
package ranking

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/config"
	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/retrieval"
	"github.com/recsys/recsys/libs/serving"
)

// Default ports (DESIGN.md §8).
const (
	DefaultGRPCPort = 9093
	DefaultHTTPPort = 8093
)

// Config is the service's whole configuration.
type Config struct {
	Serving        serving.Config
	ModelRoot      string
	ModelName      string
	Provider       string
	IntraOpThreads int
	Warmup         config.StringList
	ScanInterval   time.Duration
	UnloadGrace    time.Duration
	ExperimentFile string
	UserFeatures   string
	ItemFeatures   string
	FeatureTimeout time.Duration
	Quotas         retrieval.Quotas
	MaxPerCategory int
	Kafka          config.StringList
	ServedTopic    string
	LogBuffer      int
}

// RegisterFlags adds the service's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Serving.RegisterFlags(fs, DefaultGRPCPort, DefaultHTTPPort)
	// A public endpoint: limit each client by default.
	serving.SetDefault(fs, "rate-limit", "500")
	serving.SetDefault(fs, "rate-burst", "1000")
	fs.StringVar(&c.ModelRoot, "model-root", "models", "model registry folder: <root>/<name>/<version>/{model.onnx,metadata.json}")
	fs.StringVar(&c.ModelName, "model-name", "ctr", "the model served")
	fs.StringVar(&c.Provider, "execution-provider", "auto", "cpu, cuda, or auto (CUDA when its libraries and a device are there, else CPU)")
	fs.IntVar(&c.IntraOpThreads, "intra-op-threads", 1, "ONNX Runtime threads per inference")
	c.Warmup = config.StringList{"1", "10", "100", "500"}
	fs.Var(&c.Warmup, "warmup-batch-sizes", "batch sizes run before a model version is ready")
	fs.DurationVar(&c.ScanInterval, "model-scan-interval", 2*time.Second, "how often the registry folder is checked for new versions")
	fs.DurationVar(&c.UnloadGrace, "unload-grace", time.Minute, "how long a version no experiment routes to stays loaded before it is unloaded")
	fs.StringVar(&c.ExperimentFile, "experiment-file", "", "experiment JSON (id, salt, arms with model_version and weight); empty: one arm, the newest model")
	fs.StringVar(&c.UserFeatures, "userfeatures-addr", "localhost:9091", "user feature service gRPC address")
	fs.StringVar(&c.ItemFeatures, "itemfeatures-addr", "localhost:9092", "item feature service gRPC address")
	fs.DurationVar(&c.FeatureTimeout, "feature-timeout", 50*time.Millisecond, "deadline of feature fetches; past it the ranking uses defaults")
	q := retrieval.DefaultQuotas()
	fs.IntVar(&c.Quotas.ItemToItem, "retrieval-item2item", q.ItemToItem, "Recommend: candidates from the neighbours of the user's history")
	fs.IntVar(&c.Quotas.Embedding, "retrieval-embedding", q.Embedding, "Recommend: candidates nearest to the user's embedding")
	fs.IntVar(&c.Quotas.Trending, "retrieval-trending", q.Trending, "Recommend: candidates from trending")
	fs.IntVar(&c.MaxPerCategory, "max-per-category", 0, "Recommend: at most this many items of one category unless the request says (0: no cap)")
	fs.Var(&c.Kafka, "kafka", "comma-separated Kafka brokers for the served-ranking log (empty: no log)")
	fs.StringVar(&c.ServedTopic, "served-topic", eventstream.ServedTopic, "topic of the served-ranking log")
	fs.IntVar(&c.LogBuffer, "served-log-buffer", 10000, "served rankings buffered for Kafka; beyond it they are dropped and counted")
}

// Run serves until ctx is done.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	provider, err := modelrt.ParseProvider(cfg.Provider)
	if err != nil {
		return err
	}
	var warm []int
	for _, s := range cfg.Warmup {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("-warmup-batch-sizes %q: want positive whole numbers", s)
		}
		warm = append(warm, n)
	}
	exp := experiment.Default()
	if cfg.ExperimentFile != "" {
		if exp, err = experiment.Load(cfg.ExperimentFile); err != nil {
			return err
		}
	}
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		return err
	}
	client := serving.ClientConfig{TLS: cfg.Serving.TLS, DefaultTimeout: time.Second}
	userConn, err := serving.Dial(cfg.UserFeatures, client)
	if err != nil {
		return err
	}
	defer userConn.Close()
	itemConn, err := serving.Dial(cfg.ItemFeatures, client)
	if err != nil {
		return err
	}
	defer itemConn.Close()

	srv, err := serving.New(cfg.Serving, logger)
	if err != nil {
		return err
	}
	var r *Ranker
	reg := modelrt.NewRegistry(modelrt.RegistryConfig{
		Root: cfg.ModelRoot, Name: cfg.ModelName, Warmup: warm, Interval: cfg.ScanInterval, UnloadGrace: cfg.UnloadGrace,
		Session: modelrt.SessionOptions{Provider: provider, IntraOpThreads: cfg.IntraOpThreads},
	}, func() []string { return r.Experiment().Versions() }, logger, srv.Metrics())

	var served *ServedLog
	var wg sync.WaitGroup
	bg, stopBG := context.WithCancel(context.Background())
	defer func() { stopBG(); wg.Wait() }()
	if len(cfg.Kafka) > 0 {
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := eventstream.EnsureTopics(ectx, cfg.Kafka, 3, cfg.ServedTopic); err != nil {
			logger.Warn("could not check the served-ranking topic; rankings are logged once Kafka has it", "topic", cfg.ServedTopic, "err", err)
		}
		cancel()
		w := eventstream.NewWriter(cfg.Kafka, cfg.ServedTopic)
		defer w.Close()
		served = NewServedLog(w, cfg.LogBuffer, logger, srv.Metrics())
		wg.Go(func() { served.Run(bg) })
	}

	r = NewRanker(userfeaturesv1.NewUserFeatureServiceClient(userConn), itemfeaturesv1.NewItemFeatureServiceClient(itemConn),
		reg, exp, served, Options{FeatureTimeout: cfg.FeatureTimeout, Quotas: cfg.Quotas, MaxPerCategory: cfg.MaxPerCategory}, logger, srv.Metrics())
	if cfg.ExperimentFile != "" {
		wg.Go(func() { watchExperiment(bg, cfg.ExperimentFile, cfg.ScanInterval, r, logger) })
	}
	wg.Go(func() { reg.Run(bg) })
	rankingv1.RegisterRankingServiceServer(srv.GRPC(), r)
	rankingv1.RegisterInferenceServiceServer(srv.GRPC(), r)
	rankingv1.RegisterModelServiceServer(srv.GRPC(), r)
	if err := srv.Publish(rankingv1.File_recsys_ranking_v1_ranking_proto,
		rankingv1.RegisterRankingServiceHandler,
		rankingv1.RegisterInferenceServiceHandler,
		rankingv1.RegisterModelServiceHandler,
	); err != nil {
		srv.Close()
		return err
	}
	srv.AddCheck("model", func(ctx context.Context) error {
		v, err := reg.Latest()
		if err != nil {
			return errors.New("no model version is ready yet (warming up, or none published under -model-root)")
		}
		srv.SetDetail("execution_provider", string(v.Provider()))
		srv.SetDetail("model_version", v.Version)
		return nil
	})
	srv.SetDetail("experiment", exp.ID+" arms "+strings.Join(exp.ArmNames(), ","))
	return srv.Run(ctx)
}

// watchExperiment reloads the experiment file when it changes; a file that
// does not load is reported and the running experiment stays.
func watchExperiment(ctx context.Context, path string, every time.Duration, r *Ranker, logger *slog.Logger) {
	var seen time.Time
	if st, err := os.Stat(path); err == nil {
		seen = st.ModTime()
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := os.Stat(path)
		if err != nil || st.ModTime().Equal(seen) {
			continue
		}
		seen = st.ModTime()
		c, err := experiment.Load(path)
		if err != nil {
			logger.Error("experiment file changed but does not load; keeping the running experiment", "err", err)
			continue
		}
		r.SetExperiment(c)
		logger.Info("experiment reloaded", "id", c.ID, "arms", c.ArmNames())
	}
}
