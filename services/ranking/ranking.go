// Package ranking ranks items for users with ONNX models
// (docs/architecture.md, "Retrieval", "Models and their evaluation" and
// "Rollout: arms, subsets and the mesh"): Rank and Recommend, raw
// Predict, and ListModels over the model
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

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/config"
	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/retrieval"
	"github.com/recsys/recsys/libs/servicemap"
	"github.com/recsys/recsys/libs/serving"
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
	ItemCache      struct {
		TTL, AttributesTTL time.Duration
		Size               int
	}
	Kafka       eventstream.Config
	ServedTopic string
	LogBuffer   int
	ShadowArm   string
}

// RegisterFlags adds the service's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	// Default ports: this server's row of the service table.
	svc := servicemap.Of(servicemap.Ranking)
	c.Serving.RegisterFlags(fs, svc.GRPCPort, svc.HTTPPort)
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
	fs.StringVar(&c.UserFeatures, "userfeatures-addr", servicemap.Of(servicemap.UserFeatures).GRPCAddr(), "user feature service gRPC address")
	fs.StringVar(&c.ItemFeatures, "itemfeatures-addr", servicemap.Of(servicemap.ItemFeatures).GRPCAddr(), "item feature service gRPC address")
	// Generous: a missed deadline costs the user their history (retrieval
	// falls back to trending), far worse than a slow answer on a busy host.
	fs.DurationVar(&c.FeatureTimeout, "feature-timeout", 200*time.Millisecond, "deadline of feature fetches; past it the ranking uses defaults")
	q := retrieval.DefaultQuotas()
	fs.IntVar(&c.Quotas.ItemToItem, "retrieval-item2item", q.ItemToItem, "Recommend: candidates from the neighbours of the user's history")
	fs.IntVar(&c.Quotas.Embedding, "retrieval-embedding", q.Embedding, "Recommend: candidates nearest to the user's embedding")
	fs.IntVar(&c.Quotas.Trending, "retrieval-trending", q.Trending, "Recommend: candidates from trending")
	fs.IntVar(&c.MaxPerCategory, "max-per-category", 0, "Recommend: at most this many items of one category unless the request says (0: no cap)")
	// Within the 1 s click-to-visible budget, with room for the stream.
	fs.DurationVar(&c.ItemCache.TTL, "item-cache-ttl", 500*time.Millisecond, "item features cached in ranking are re-read when older than this (0: no cache)")
	fs.DurationVar(&c.ItemCache.AttributesTTL, "item-cache-attributes-ttl", time.Minute, "item attributes (title, categories, year) cached in ranking are re-read when older than this, or when the feature generation changes")
	fs.IntVar(&c.ItemCache.Size, "item-cache-size", 100_000, "items ranking's item-feature cache holds at most")
	c.Kafka.RegisterFlags(fs, nil, "comma-separated Kafka brokers for the served-ranking log (empty: no log)")
	fs.StringVar(&c.ServedTopic, "served-topic", eventstream.ServedTopic, "topic of the served-ranking log")
	fs.IntVar(&c.LogBuffer, "served-log-buffer", 10000, "served rankings buffered for Kafka; beyond it they are dropped and counted")
	fs.StringVar(&c.ShadowArm, "shadow-arm", "treatment", "the experiment arm whose model scores mirrored (shadow) requests: the candidate under test (an arm the experiment lacks: the user's own arm)")
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
	if cfg.ItemCache.Size < 1 {
		return fmt.Errorf("-item-cache-size %d: want at least 1", cfg.ItemCache.Size)
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
	if len(cfg.Kafka.Brokers) > 0 {
		kc, err := cfg.Kafka.Cluster()
		if err != nil {
			return err
		}
		ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := eventstream.EnsureTopics(ectx, kc, 3, cfg.ServedTopic); err != nil {
			logger.Warn("could not check the served-ranking topic; rankings are logged once Kafka has it", "topic", cfg.ServedTopic, "err", err)
		}
		cancel()
		w := eventstream.NewWriter(kc, cfg.ServedTopic)
		defer w.Close()
		served = NewServedLog(w, cfg.LogBuffer, logger, srv.Metrics())
		wg.Go(func() { served.Run(bg) })
	}

	r = NewRanker(userfeaturesv1.NewUserFeatureServiceClient(userConn), itemfeaturesv1.NewItemFeatureServiceClient(itemConn),
		reg, exp, served, Options{FeatureTimeout: cfg.FeatureTimeout, Quotas: cfg.Quotas, MaxPerCategory: cfg.MaxPerCategory,
			ItemCacheTTL: cfg.ItemCache.TTL, ItemAttributesTTL: cfg.ItemCache.AttributesTTL, ItemCacheSize: cfg.ItemCache.Size}, logger, srv.Metrics())
	if cfg.ExperimentFile != "" {
		wg.Go(func() { watchExperiment(bg, cfg.ExperimentFile, cfg.ScanInterval, r, logger) })
	}
	wg.Go(func() { reg.Run(bg) })
	rankingv1.RegisterRankingServiceServer(srv.GRPC(), newTrafficRanker(r, cfg.ShadowArm, srv.Metrics()))
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

// trafficRanker serves Rank and Recommend through the Ranker. It decides
// who scores a mirrored request and counts every answer by traffic and arm
// (docs/architecture.md, "Rollout: arms, subsets and the mesh").
//
// The experiment alone assigns arms (sticky per user); the mesh only
// chooses which ranking binary answers, and mirrors a few percent of live
// requests to the canary subset. Envoy marks a mirrored copy by appending
// -shadow to its authority; the Ranker never logs such a request. Left to
// itself it would score the copy with the user's own arm, mostly control,
// so the copy would test nothing: here it is scored by the model of the
// shadow arm (the candidate), whatever arm or version the request or its
// headers name. Its answer goes nowhere (Envoy drops it), so the counters
// below are how the candidate's scores, latency and errors are compared
// with live traffic's.
//
// It is safe for concurrent use.
type trafficRanker struct {
	*Ranker
	shadowArm string
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	scores    *prometheus.HistogramVec
}

// scoredItems is how many of an answer's first items are observed in
// recsys_rank_score: the ones a user sees.
const scoredItems = 10

func newTrafficRanker(r *Ranker, shadowArm string, reg prometheus.Registerer) *trafficRanker {
	labels := []string{"traffic", "arm"}
	t := &trafficRanker{Ranker: r, shadowArm: shadowArm,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_rank_requests_total",
			Help: "Rank and Recommend answers by traffic (live, or shadow: a mirrored copy), experiment arm and outcome: ok, error, rejected (InvalidArgument, NotFound, Canceled: the caller's fault), model_fallback, features_degraded, unpinned (the arm's model was not loaded and another served).",
		}, append(labels, "outcome")),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recsys_rank_traffic_seconds",
			Help:    "Time to answer Rank or Recommend in the server, by traffic and arm.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, labels),
		scores: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recsys_rank_score",
			Help:    "Scores of the first items of each answer, by traffic and arm: the candidate's score distribution beside live traffic's.",
			Buckets: prometheus.LinearBuckets(0.05, 0.05, 19),
		}, labels),
	}
	reg.MustRegister(t.requests, t.latency, t.scores)
	return t
}

// route returns the context the Ranker should see, whether the request is
// a mirrored copy, and the arm it is served in (a metric label: an arm of
// the experiment, or "invalid" for a header naming none).
func (t *trafficRanker) route(ctx context.Context, userID string) (context.Context, bool, string) {
	md, _ := metadata.FromIncomingContext(ctx)
	exp := t.Experiment()
	shadow := false
	for _, key := range []string{":authority", "x-forwarded-host"} {
		if v := md.Get(key); len(v) > 0 {
			if h, _, _ := strings.Cut(v[0], ":"); strings.HasSuffix(h, "-shadow") {
				shadow = true
			}
		}
	}
	if shadow {
		if _, ok := exp.Arm(t.shadowArm); ok {
			md = md.Copy()
			md.Set("x-recsys-arm", t.shadowArm)
			md.Delete("x-model-version")
			return metadata.NewIncomingContext(ctx, md), true, t.shadowArm
		}
	}
	if v := md.Get("x-recsys-arm"); len(v) > 0 && v[0] != "" {
		if _, ok := exp.Arm(v[0]); !ok {
			return ctx, shadow, "invalid"
		}
		return ctx, shadow, v[0]
	}
	return ctx, shadow, exp.Assign(userID).Name
}

// answer is what the counters read from a Rank or Recommend response.
type answer interface {
	GetItems() []*rankingv1.ScoredItem
	GetModelVersion() string
	GetModelFallback() bool
	GetFeaturesDegraded() bool
}

func (t *trafficRanker) observe(shadow bool, arm string, start time.Time, resp answer, err error) {
	traffic := "live"
	if shadow {
		traffic = "shadow"
	}
	outcome := "ok"
	switch {
	case err != nil:
		outcome = "error"
		if c := status.Code(err); c == codes.InvalidArgument || c == codes.NotFound || c == codes.Canceled {
			outcome = "rejected" // the request's fault, not the server's
		}
	case resp.GetModelFallback():
		outcome = "model_fallback"
	case resp.GetFeaturesDegraded():
		outcome = "features_degraded"
	default:
		if a, ok := t.Experiment().Arm(arm); ok && a.ModelVersion != "" && resp.GetModelVersion() != a.ModelVersion {
			outcome = "unpinned"
		}
	}
	t.requests.WithLabelValues(traffic, arm, outcome).Inc()
	t.latency.WithLabelValues(traffic, arm).Observe(time.Since(start).Seconds())
	if err == nil {
		scores := t.scores.WithLabelValues(traffic, arm)
		for _, it := range resp.GetItems()[:min(scoredItems, len(resp.GetItems()))] {
			scores.Observe(float64(it.GetScore()))
		}
	}
}

// Rank scores the candidates; a mirrored copy with the shadow arm's model.
func (t *trafficRanker) Rank(ctx context.Context, req *rankingv1.RankRequest) (*rankingv1.RankResponse, error) {
	start := time.Now()
	ctx, shadow, arm := t.route(ctx, req.GetUserId())
	if shadow && arm == t.shadowArm && req.GetModelVersion() != "" {
		req = proto.CloneOf(req)
		req.ModelVersion = ""
	}
	resp, err := t.Ranker.Rank(ctx, req)
	t.observe(shadow, arm, start, resp, err)
	return resp, err
}

// Recommend recommends; a mirrored copy with the shadow arm's model.
func (t *trafficRanker) Recommend(ctx context.Context, req *rankingv1.RecommendRequest) (*rankingv1.RecommendResponse, error) {
	start := time.Now()
	ctx, shadow, arm := t.route(ctx, req.GetUserId())
	if shadow && arm == t.shadowArm && req.GetModelVersion() != "" {
		req = proto.CloneOf(req)
		req.ModelVersion = ""
	}
	resp, err := t.Ranker.Recommend(ctx, req)
	t.observe(shadow, arm, start, resp, err)
	return resp, err
}
