// Package featureservice is the gRPC face of the feature store, shared by
// the userfeatures and itemfeatures services: their handlers, their
// configuration and the mapping of store errors to status codes.
package featureservice

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	featurev1 "github.com/recsys/recsys/gen/go/recsys/feature/v1"
	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/serving"
)

// Config is a feature service's whole configuration.
type Config struct {
	Serving   serving.Config
	Redis     featurestore.Config
	Namespace string
}

// RegisterFlags adds the flags of a feature service to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet, grpcPort, httpPort int) {
	c.Serving.RegisterFlags(fs, grpcPort, httpPort)
	c.Redis.RegisterFlags(fs)
	fs.StringVar(&c.Namespace, "redis-namespace", "", "prefix of every feature key (lets several deployments share a Redis)")
}

// Run serves a feature service: register adds its handlers, given the store
// and the metrics. The store follows the active feature generation.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, register func(*serving.Server, *featurestore.Store, *Metrics) error) error {
	store, closeRedis, err := cfg.Redis.Open(cfg.Namespace)
	if err != nil {
		return err
	}
	defer closeRedis()
	srv, err := serving.New(cfg.Serving, logger)
	if err != nil {
		return err
	}
	srv.AddCheck("redis", store.Ping)
	if err := register(srv, store, NewMetrics(srv.Metrics())); err != nil {
		srv.Close()
		return err
	}
	return RunFollowing(ctx, srv, store, logger)
}

// RunFollowing serves while the store follows the active feature
// generation (see featurestore.Store.Follow), and stops both.
func RunFollowing(ctx context.Context, srv *serving.Server, store *featurestore.Store, logger *slog.Logger) error {
	if err := store.Refresh(ctx); err != nil {
		logger.Warn("could not read the active feature generation; starting with the default", "err", err)
	}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		store.Follow(fctx, time.Second, logger)
	}()
	err := srv.Run(ctx)
	stop()
	<-done
	return err
}

// Metrics are the feature services' own metrics.
type Metrics struct {
	read    *prometheus.HistogramVec
	missing *prometheus.CounterVec
}

// NewMetrics registers the metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		read: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recsys_feature_read_seconds",
			Help:    "Time to read the features of one batch from Redis.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25},
		}, []string{"entity"}),
		missing: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_feature_entities_missing_total",
			Help: "Entities read that had no stored features and got defaults.",
		}, []string{"entity"}),
	}
	reg.MustRegister(m.read, m.missing)
	return m
}

// features reads one batch with get (Store.Users or Store.Items) and
// records how long it took and how many entities were missing, labelled
// entity.
func features(ctx context.Context, m *Metrics, entity string, get func(ctx context.Context, ids, names []string) ([]*featurev1.FeatureSet, error), ids, names []string) ([]*featurev1.FeatureSet, error) {
	start := time.Now()
	sets, err := get(ctx, ids, names)
	if err != nil {
		return nil, Status(err)
	}
	m.read.WithLabelValues(entity).Observe(time.Since(start).Seconds())
	n := 0
	for _, s := range sets {
		if s.GetMissing() {
			n++
		}
	}
	m.missing.WithLabelValues(entity).Add(float64(n))
	return sets, nil
}

// Status maps a feature-store error to a gRPC status: bad input is
// InvalidArgument, a failing Redis is Unavailable, a deadline stays one.
func Status(err error) error {
	var unknown *featurestore.UnknownFeaturesError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, featurestore.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.As(err, &unknown):
		return status.Error(codes.InvalidArgument, "feature_names: "+err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	default:
		return status.Error(codes.Unavailable, fmt.Sprintf("feature store unavailable: %v", err))
	}
}

// UserServer implements UserFeatureService.
type UserServer struct {
	userfeaturesv1.UnimplementedUserFeatureServiceServer
	Store   *featurestore.Store
	Metrics *Metrics
}

// GetUserFeature returns one user's features.
func (s *UserServer) GetUserFeature(ctx context.Context, req *userfeaturesv1.GetUserFeatureRequest) (*userfeaturesv1.GetUserFeatureResponse, error) {
	sets, err := features(ctx, s.Metrics, "user", s.Store.Users, []string{req.GetUserId()}, req.GetFeatureNames())
	if err != nil {
		return nil, err
	}
	return &userfeaturesv1.GetUserFeatureResponse{User: sets[0]}, nil
}

// GetUserFeatures returns a batch of users' features.
func (s *UserServer) GetUserFeatures(ctx context.Context, req *userfeaturesv1.GetUserFeaturesRequest) (*userfeaturesv1.GetUserFeaturesResponse, error) {
	sets, err := features(ctx, s.Metrics, "user", s.Store.Users, req.GetUserIds(), req.GetFeatureNames())
	if err != nil {
		return nil, err
	}
	return &userfeaturesv1.GetUserFeaturesResponse{Users: sets}, nil
}

// UpsertUsers replaces user profiles.
func (s *UserServer) UpsertUsers(ctx context.Context, req *userfeaturesv1.UpsertUsersRequest) (*userfeaturesv1.UpsertUsersResponse, error) {
	if err := s.Store.UpsertUsers(ctx, req.GetUsers()); err != nil {
		return nil, Status(err)
	}
	return &userfeaturesv1.UpsertUsersResponse{UpsertedCount: int32(len(req.GetUsers()))}, nil
}

// ItemServer implements ItemFeatureService.
type ItemServer struct {
	itemfeaturesv1.UnimplementedItemFeatureServiceServer
	Store   *featurestore.Store
	Metrics *Metrics
}

// DefaultTrendingLimit is ListTrendingItems' limit when none is given.
const DefaultTrendingLimit = 50

// GetItemFeature returns one item's features.
func (s *ItemServer) GetItemFeature(ctx context.Context, req *itemfeaturesv1.GetItemFeatureRequest) (*itemfeaturesv1.GetItemFeatureResponse, error) {
	sets, err := features(ctx, s.Metrics, "item", s.Store.Items, []string{req.GetItemId()}, req.GetFeatureNames())
	if err != nil {
		return nil, err
	}
	return &itemfeaturesv1.GetItemFeatureResponse{Item: sets[0]}, nil
}

// GetItemFeatures returns a batch of items' features.
func (s *ItemServer) GetItemFeatures(ctx context.Context, req *itemfeaturesv1.GetItemFeaturesRequest) (*itemfeaturesv1.GetItemFeaturesResponse, error) {
	gen := s.Store.Generation() // before the read: a switch during it shows next time
	if req.GetColumnar() {
		start := time.Now()
		cols, err := s.Store.ItemColumns(ctx, req.GetItemIds(), req.GetFeatureNames())
		if err != nil {
			return nil, Status(err)
		}
		s.Metrics.read.WithLabelValues("item").Observe(time.Since(start).Seconds())
		s.Metrics.missing.WithLabelValues("item").Add(float64(countTrue(cols.GetMissing())))
		return &itemfeaturesv1.GetItemFeaturesResponse{Columns: cols, Generation: gen}, nil
	}
	sets, err := features(ctx, s.Metrics, "item", s.Store.Items, req.GetItemIds(), req.GetFeatureNames())
	if err != nil {
		return nil, err
	}
	return &itemfeaturesv1.GetItemFeaturesResponse{Items: sets, Generation: gen}, nil
}

// UpsertItems replaces item attributes.
func (s *ItemServer) UpsertItems(ctx context.Context, req *itemfeaturesv1.UpsertItemsRequest) (*itemfeaturesv1.UpsertItemsResponse, error) {
	if err := s.Store.UpsertItems(ctx, req.GetItems()); err != nil {
		return nil, Status(err)
	}
	return &itemfeaturesv1.UpsertItemsResponse{UpsertedCount: int32(len(req.GetItems()))}, nil
}

// ListTrendingItems returns the top trending items. The contract bounds
// the limit (0..featurestore.MaxTrending, TestContractAgreesWithTheStore).
func (s *ItemServer) ListTrendingItems(ctx context.Context, req *itemfeaturesv1.ListTrendingItemsRequest) (*itemfeaturesv1.ListTrendingItemsResponse, error) {
	limit := int(req.GetLimit())
	if limit == 0 {
		limit = DefaultTrendingLimit
	}
	top, err := s.Store.Trending(ctx, req.GetCategory(), limit)
	if err != nil {
		return nil, Status(err)
	}
	resp := &itemfeaturesv1.ListTrendingItemsResponse{Items: make([]*itemfeaturesv1.TrendingItem, len(top))}
	for i, t := range top {
		resp.Items[i] = &itemfeaturesv1.TrendingItem{ItemId: t.ItemID, Score: t.Score}
	}
	return resp, nil
}
