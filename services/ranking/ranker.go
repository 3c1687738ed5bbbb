package ranking

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	featurev1 "github.com/recsys/recsys/gen/go/recsys/feature/v1"
	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/retrieval"
)

// Limits of the ranking API. The contract (ranking.proto's buf.validate
// rules, enforced before any handler runs) holds the request limits;
// MaxCandidates is its bound on RankRequest.candidate_ids, used here for
// Predict's rows too (TestContractLimits checks they agree).
const (
	MaxCandidates          = 2000
	DefaultRecommendLimit  = 10
	retrievalTrending      = 200
	retrievalPerCategory   = 50
	retrievalTopCategories = 3
)

// Ranker implements RankingService, InferenceService and ModelService.
// It is safe for concurrent use.
type Ranker struct {
	rankingv1.UnimplementedRankingServiceServer
	rankingv1.UnimplementedInferenceServiceServer
	rankingv1.UnimplementedModelServiceServer

	users          userfeaturesv1.UserFeatureServiceClient
	items          itemfeaturesv1.ItemFeatureServiceClient
	models         *modelrt.Registry
	exp            atomic.Pointer[experiment.Config]
	served         *ServedLog // nil: feature logging off
	cache          *itemCache
	featureTimeout time.Duration
	opts           Options
	logger         *slog.Logger
	m              *metrics
	buffers        sync.Pool // *[]float32: feature rows, scores
	// lastGood is the last trending candidate list read whole: Recommend
	// answers from it when retrieval cannot (its reads missed their
	// deadline) rather than with nothing.
	lastGood atomic.Pointer[[]string]
}

// Options shape Recommend.
type Options struct {
	// FeatureTimeout is the deadline of feature fetches; past it the
	// ranking uses defaults.
	FeatureTimeout time.Duration
	// Quotas bound each retrieval source's candidates.
	Quotas retrieval.Quotas
	// MaxPerCategory caps the items of one (first) category in a
	// recommendation when the request does not say; 0: no cap.
	MaxPerCategory int
	// ItemCacheTTL bounds the age of the real-time item features served
	// from ranking's cache (0: no cache), ItemAttributesTTL that of item
	// attributes, ItemCacheSize its entries (see itemCache).
	ItemCacheTTL      time.Duration
	ItemAttributesTTL time.Duration
	ItemCacheSize     int
}

type metrics struct {
	latency    *prometheus.HistogramVec
	candidates prometheus.Histogram
	fallbacks  *prometheus.CounterVec
	retrieved  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recsys_rank_seconds",
			Help:    "Time to answer Rank or Recommend, in the server.",
			Buckets: []float64{.001, .002, .003, .005, .0075, .01, .015, .025, .05, .1, .25},
		}, []string{"method"}),
		candidates: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "recsys_rank_batch_size",
			Help:    "Candidates scored per request.",
			Buckets: []float64{1, 10, 50, 100, 200, 500, 1000, 2000},
		}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_rank_fallbacks_total",
			Help: "Degraded answers: features (a feature service slow or down, defaults used), model (no model, trending order) or last_good_candidates (trending unreadable: the last trending list read whole).",
		}, []string{"kind"}),
	}
	m.retrieved = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "recsys_retrieval_candidates_total",
		Help: "Candidates Recommend ranked, by the retrieval source that proposed them.",
	}, []string{"source"})
	reg.MustRegister(m.latency, m.candidates, m.fallbacks, m.retrieved)
	return m
}

// NewRanker wires a ranker. served may be nil.
func NewRanker(users userfeaturesv1.UserFeatureServiceClient, items itemfeaturesv1.ItemFeatureServiceClient, models *modelrt.Registry,
	exp *experiment.Config, served *ServedLog, opts Options, logger *slog.Logger, reg prometheus.Registerer) *Ranker {
	r := &Ranker{users: users, items: items, models: models, served: served, featureTimeout: opts.FeatureTimeout, opts: opts, logger: logger, m: newMetrics(reg),
		cache: newItemCache(items, opts.ItemCacheTTL, opts.ItemAttributesTTL, max(opts.ItemCacheSize, 1), reg)}
	r.exp.Store(exp)
	return r
}

// buffer is a float buffer from the pool; put it back when done.
func (r *Ranker) buffer() *[]float32 {
	if b, ok := r.buffers.Get().(*[]float32); ok {
		return b
	}
	return new([]float32)
}

// Experiment is the experiment requests are assigned in now.
func (r *Ranker) Experiment() *experiment.Config { return r.exp.Load() }

// SetExperiment replaces the experiment; requests already assigned finish
// in the old one.
func (r *Ranker) SetExperiment(c *experiment.Config) { r.exp.Store(c) }

// assignment is who serves a request.
type assignment struct {
	exp     *experiment.Config
	arm     experiment.Arm
	version string // pinned by request or header; "" means the arm's
	shadow  bool   // a mirrored request: scored, never logged
}

// assign applies the sticky assignment and the request's overrides: the
// x-recsys-arm and x-model-version headers (callers inside the mesh; the
// gateway strips them) and the request's own model_version.
func (r *Ranker) assign(ctx context.Context, userID, pinned string) (assignment, error) {
	exp := r.exp.Load()
	a := assignment{exp: exp, arm: exp.Assign(userID), version: pinned}
	md, _ := metadata.FromIncomingContext(ctx)
	if v := first(md, "x-recsys-arm"); v != "" {
		arm, ok := exp.Arm(v)
		if !ok {
			return a, status.Errorf(codes.InvalidArgument, "x-recsys-arm %q: experiment %s has arms [%s]", v, exp.ID, strings.Join(exp.ArmNames(), ", "))
		}
		a.arm = arm
	}
	if v := first(md, "x-model-version"); v != "" && a.version == "" {
		a.version = v
	}
	for _, host := range []string{first(md, ":authority"), first(md, "x-forwarded-host")} {
		if h, _, _ := strings.Cut(host, ":"); strings.HasSuffix(h, "-shadow") {
			a.shadow = true
		}
	}
	return a, nil
}

func first(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// model picks the version to run: an explicit pin must exist (NotFound
// otherwise); an arm's version falls back to the newest when it is not
// loaded; nil when no model is ready at all.
func (r *Ranker) model(a assignment) (*modelrt.Version, error) {
	if a.version != "" {
		v, err := r.models.Get(a.version)
		if err != nil {
			return nil, status.Error(codes.NotFound, err.Error())
		}
		return v, nil
	}
	if a.arm.ModelVersion != "" {
		if v, err := r.models.Get(a.arm.ModelVersion); err == nil {
			return v, nil
		}
	}
	v, err := r.models.Latest()
	if err != nil {
		return nil, nil
	}
	return v, nil
}

// Rank scores the candidates for the user.
func (r *Ranker) Rank(ctx context.Context, req *rankingv1.RankRequest) (*rankingv1.RankResponse, error) {
	start := time.Now()
	a, err := r.assign(ctx, req.GetUserId(), req.GetModelVersion())
	if err != nil {
		return nil, err
	}
	v, err := r.model(a)
	if err != nil {
		return nil, err
	}
	res := r.rank(ctx, v, req.GetUserId(), dedupe(req.GetCandidateIds()), nil, nil, false, int(req.GetLimit()), a)
	if l := int(req.GetLimit()); l > 0 && l < len(res.items) {
		res.items = res.items[:l]
	}
	r.describe(ctx, res)
	r.m.latency.WithLabelValues("rank").Observe(time.Since(start).Seconds())
	r.logServed(res, a)
	return &rankingv1.RankResponse{
		Items: res.items, ModelVersion: res.version, ExperimentId: a.exp.ID, Arm: a.arm.Name, RequestId: res.requestID,
		FeaturesDegraded: res.degraded, ModelFallback: res.fallback, ServerLatency: durationpb.New(time.Since(start)),
	}, nil
}

func dedupe(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if _, ok := seen[id]; !ok && id != "" {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// ranked is one ranking before it becomes a response.
type ranked struct {
	items     []*rankingv1.ScoredItem
	rows      map[string][]float32 // item → its feature row, for the served log
	meta      *modelrt.Metadata
	version   string
	requestID string
	userID    string
	degraded  bool
	fallback  bool
	described bool // items carry their title and categories
}

// rank fetches features (the user's unless given), scores with v (nil:
// trending order) and sorts; the answer holds the first keep items (0:
// all). signals are the retrieval stage's, per id.
// The items' display attributes (title, categories) come with the model's
// item features when it reads any, or when describe asks for them (a
// category cap needs them before the cut); else describe fetches them
// for the returned items only.
func (r *Ranker) rank(ctx context.Context, v *modelrt.Version, userID string, ids []string, user *featurev1.FeatureSet, signals map[string][]float32, describe bool, keep int, a assignment) *ranked {
	r.m.candidates.Observe(float64(len(ids)))
	out := &ranked{requestID: newRequestID(), userID: userID}
	if v == nil {
		return r.trendingOrder(ctx, ids, out)
	}
	userNames, itemNames := v.Meta.FeatureNames()
	if len(itemNames) > 0 || describe {
		itemNames = appendMissing(itemNames, "title", "categories")
		out.described = true
	}
	fctx, cancel := context.WithTimeout(ctx, r.featureTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var items []*featurev1.FeatureSet
	var userErr, itemErr error
	if user == nil && len(userNames) > 0 {
		wg.Go(func() {
			resp, err := r.users.GetUserFeatures(fctx, &userfeaturesv1.GetUserFeaturesRequest{UserIds: []string{userID}, FeatureNames: userNames})
			if userErr = err; err == nil && len(resp.GetUsers()) == 1 {
				user = resp.GetUsers()[0]
			}
		})
	}
	if len(itemNames) > 0 {
		// Items the cache could not read are nil: they get defaults.
		items, itemErr = r.cache.get(fctx, ids, itemNames)
	}
	wg.Wait()
	if itemErr != nil {
		out.described = false
	}
	if userErr != nil || itemErr != nil {
		out.degraded = true
		r.m.fallbacks.WithLabelValues("features").Inc()
		r.logger.Warn("ranking with default features", "user_err", userErr, "item_err", itemErr)
	}

	// The rows and scores of ~350 candidates are pooled: the feature log
	// keeps copies of the few rows returned.
	rowsBuf, scoresBuf := r.buffer(), r.buffer()
	defer r.buffers.Put(rowsBuf)
	defer r.buffers.Put(scoresBuf)
	*rowsBuf = v.Meta.Rows(userID, user, ids, items, signals, *rowsBuf)
	scores, err := v.Score(*rowsBuf, (*scoresBuf)[:0])
	if errors.Is(err, modelrt.ErrUnloaded) {
		// Swapped out between pick and run: take the registry's choice again.
		if v, err = r.model(a); err == nil && v != nil {
			*rowsBuf = v.Meta.Rows(userID, user, ids, items, signals, *rowsBuf)
			scores, err = v.Score(*rowsBuf, (*scoresBuf)[:0])
		}
	}
	*scoresBuf = scores
	if err != nil || v == nil {
		r.logger.Error("model failed; answering in trending order", "err", err)
		return r.trendingOrder(ctx, ids, out)
	}
	out.version, out.meta = v.Version, v.Meta
	width := len(v.Meta.Features)
	logged := !a.shadow && r.served != nil
	// Order by score, then make answer items of the first keep only: a
	// Recommend returns 10 of its ~350 candidates.
	order := make([]int32, len(ids))
	for i := range order {
		order[i] = int32(i)
	}
	// Ties keep the candidates' order; the index breaks them, which is
	// cheaper than a stable sort.
	slices.SortFunc(order, func(i, j int32) int {
		if c := cmp.Compare(scores[j], scores[i]); c != 0 {
			return c
		}
		return cmp.Compare(i, j)
	})
	if keep <= 0 || keep > len(order) {
		keep = len(order)
	}
	out.items = make([]*rankingv1.ScoredItem, keep)
	var kept []float32
	if logged {
		out.rows = make(map[string][]float32, keep)
		kept = make([]float32, keep*width)
	}
	for pos, i := range order[:keep] {
		id := ids[i]
		it := &rankingv1.ScoredItem{ItemId: id, Score: scores[i], Position: int32(pos)}
		if int(i) < len(items) {
			it.Title = items[i].GetFeatures()["title"].GetText()
			it.Categories = items[i].GetFeatures()["categories"].GetList().GetValues()
		}
		out.items[pos] = it
		if logged {
			row := kept[pos*width : (pos+1)*width]
			copy(row, (*rowsBuf)[int(i)*width:])
			out.rows[id] = row
		}
	}
	return out
}

// describe fills the returned items' title and categories when rank did
// not; a failure leaves them empty (they are for display only).
func (r *Ranker) describe(ctx context.Context, res *ranked) {
	if res.described || len(res.items) == 0 {
		return
	}
	fctx, cancel := context.WithTimeout(ctx, r.featureTimeout)
	defer cancel()
	ids := make([]string, len(res.items))
	for i, it := range res.items {
		ids[i] = it.GetItemId()
	}
	sets, err := r.cache.get(fctx, ids, []string{"title", "categories"})
	if err != nil {
		r.logger.Warn("display attributes missing for some ranked items", "err", err)
	}
	for i, it := range res.items {
		it.Title = sets[i].GetFeatures()["title"].GetText()
		it.Categories = sets[i].GetFeatures()["categories"].GetList().GetValues()
	}
	res.described = true
}

func appendMissing(list []string, names ...string) []string {
	for _, n := range names {
		if !slices.Contains(list, n) {
			list = append(list, n)
		}
	}
	return list
}

func sortScored(items []*rankingv1.ScoredItem) {
	slices.SortStableFunc(items, func(a, b *rankingv1.ScoredItem) int { return cmp.Compare(b.Score, a.Score) })
	for i, it := range items {
		it.Position = int32(i)
	}
}

// trendingOrder ranks by trending score when no model can serve.
func (r *Ranker) trendingOrder(ctx context.Context, ids []string, out *ranked) *ranked {
	out.fallback = true
	r.m.fallbacks.WithLabelValues("model").Inc()
	score := map[string]float64{}
	fctx, cancel := context.WithTimeout(ctx, r.featureTimeout)
	defer cancel()
	if resp, err := r.items.ListTrendingItems(fctx, &itemfeaturesv1.ListTrendingItemsRequest{Limit: 1000}); err == nil {
		for _, t := range resp.GetItems() {
			score[t.GetItemId()] = t.GetScore()
		}
	} else {
		out.degraded = true
	}
	out.items = make([]*rankingv1.ScoredItem, len(ids))
	for i, id := range ids {
		out.items[i] = &rankingv1.ScoredItem{ItemId: id, Score: float32(score[id])}
	}
	sortScored(out.items)
	return out
}

// Recommend retrieves candidates (the model version's retrieval index over
// the user's consumed history: item-to-item neighbours, nearest item
// vectors and trending; trending lists alone when the version has no
// index), never proposing what the user consumed or asked to exclude,
// ranks them with the version's model, and caps categories when asked.
func (r *Ranker) Recommend(ctx context.Context, req *rankingv1.RecommendRequest) (*rankingv1.RecommendResponse, error) {
	start := time.Now()
	limit := int(cmp.Or(req.GetLimit(), DefaultRecommendLimit))
	perCat := int(cmp.Or(req.GetMaxPerCategory(), int32(r.opts.MaxPerCategory)))
	a, err := r.assign(ctx, req.GetUserId(), req.GetModelVersion())
	if err != nil {
		return nil, err
	}
	v, err := r.model(a)
	if err != nil {
		return nil, err
	}
	c := r.retrieve(ctx, v, req.GetUserId(), req.GetExcludeItemIds())
	resp := &rankingv1.RecommendResponse{ExperimentId: a.exp.ID, Arm: a.arm.Name, FeaturesDegraded: c.degraded, RetrievalFallback: c.fallback}
	if len(c.ids) > 0 {
		keep := limit // a category cap may need all of them
		if perCat > 0 {
			keep = 0
		}
		res := r.rank(ctx, v, req.GetUserId(), c.ids, c.user, c.signals, perCat > 0, keep, a)
		res.items = diversify(res.items, limit, perCat)
		r.describe(ctx, res)
		c.label(res.items)
		r.logServed(res, a)
		resp.Items, resp.ModelVersion, resp.RequestId = res.items, res.version, res.requestID
		resp.FeaturesDegraded = resp.FeaturesDegraded || res.degraded
		resp.ModelFallback = res.fallback
	} else {
		resp.RequestId = newRequestID()
	}
	r.m.latency.WithLabelValues("recommend").Observe(time.Since(start).Seconds())
	resp.ServerLatency = durationpb.New(time.Since(start))
	return resp, nil
}

// candidates are what retrieval proposes for one request.
type candidates struct {
	ids      []string
	sources  []retrieval.Source    // per ids
	signals  map[string][]float32  // per ids, for the model's retrieval.* features
	user     *featurev1.FeatureSet // nil when the user service failed
	degraded bool                  // a feature call failed
	fallback bool                  // no retrieval index: trending lists only
}

// label sets the source of each answer item among the candidates.
func (c *candidates) label(items []*rankingv1.ScoredItem) {
	byID := make(map[string]*rankingv1.ScoredItem, len(items))
	for _, it := range items {
		byID[it.GetItemId()] = it
	}
	for k, id := range c.ids {
		if it := byID[id]; it != nil {
			it.Source = c.sources[k].String()
		}
	}
}

// retrieve reads the user's features (the model's, and the history and
// clicks retrieval needs) and gathers candidates from v's retrieval index,
// or from trending lists when v has none.
func (r *Ranker) retrieve(ctx context.Context, v *modelrt.Version, userID string, exclude []string) candidates {
	fctx, cancel := context.WithTimeout(ctx, r.featureTimeout)
	defer cancel()
	var c candidates
	names := []string{"history", "clicked", "category_affinity"}
	if v != nil {
		userNames, _ := v.Meta.FeatureNames()
		names = appendMissing(names, userNames...)
	}
	if resp, err := r.users.GetUserFeatures(fctx, &userfeaturesv1.GetUserFeaturesRequest{UserIds: []string{userID}, FeatureNames: names}); err == nil && len(resp.GetUsers()) == 1 {
		c.user = resp.GetUsers()[0]
	} else {
		c.degraded = true
	}
	u := retrieval.User{History: c.user.GetFeatures()["history"].GetList().GetValues(), Clicked: c.user.GetFeatures()["clicked"].GetList().GetValues()}
	skip := make(map[string]bool, len(exclude))
	for _, id := range exclude {
		skip[id] = true
	}
	if v != nil && v.Retrieval != nil {
		// Retrieve never proposes what the user consumed or clicked.
		var excluded func(string) bool // nil: nothing to look up per item
		if len(skip) > 0 {
			excluded = func(id string) bool { return skip[id] }
		}
		res := v.Retrieval.Retrieve(u, excluded, r.opts.Quotas)
		c.ids, c.sources, c.signals = res.IDs, res.Sources, res.Signals
		per := map[retrieval.Source]int{}
		for _, src := range res.Sources {
			per[src]++
		}
		for src, n := range per {
			r.m.retrieved.WithLabelValues(src.String()).Add(float64(n))
		}
		return c
	}
	c.fallback = true
	for _, id := range slices.Concat(u.History, u.Clicked) {
		skip[id] = true
	}
	cats := topCategories(c.user.GetFeatures()["category_affinity"].GetWeights().GetWeights(), retrievalTopCategories)
	lists := make([][]*itemfeaturesv1.TrendingItem, 1+len(cats))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, cat := range append([]string{""}, cats...) {
		wg.Go(func() {
			limit := int32(retrievalPerCategory)
			if cat == "" {
				limit = retrievalTrending
			}
			resp, err := r.items.ListTrendingItems(fctx, &itemfeaturesv1.ListTrendingItemsRequest{Limit: limit, Category: cat})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				c.degraded = true
				return
			}
			lists[i] = resp.GetItems()
		})
	}
	wg.Wait()
	var all []string
	for _, l := range lists {
		for _, t := range l {
			all = append(all, t.GetItemId())
		}
	}
	if len(all) > 0 && !c.degraded {
		r.lastGood.Store(&all)
	} else if last := r.lastGood.Load(); len(all) == 0 && last != nil {
		all = *last
		c.degraded = true
		r.m.fallbacks.WithLabelValues("last_good_candidates").Inc()
	}
	for _, id := range all {
		if !skip[id] {
			skip[id] = true
			c.ids, c.sources = append(c.ids, id), append(c.sources, retrieval.Trending)
		}
	}
	r.m.retrieved.WithLabelValues(retrieval.Trending.String()).Add(float64(len(c.ids)))
	return c
}

func topCategories(aff map[string]float64, n int) []string {
	cats := make([]string, 0, len(aff))
	for c := range aff {
		cats = append(cats, c)
	}
	slices.SortFunc(cats, func(a, b string) int { return cmp.Or(cmp.Compare(aff[b], aff[a]), cmp.Compare(a, b)) })
	return cats[:min(n, len(cats))]
}

// diversify keeps the ranking order but lets at most perCat items of one
// (first) category into the top limit (perCat 0: no cap).
func diversify(items []*rankingv1.ScoredItem, limit, perCat int) []*rankingv1.ScoredItem {
	count := map[string]int{}
	out := make([]*rankingv1.ScoredItem, 0, limit)
	for _, it := range items {
		if len(out) == limit {
			break
		}
		cat := ""
		if len(it.GetCategories()) > 0 {
			cat = it.GetCategories()[0]
		}
		if cat != "" && perCat > 0 && count[cat] >= perCat {
			continue
		}
		count[cat]++
		it.Position = int32(len(out))
		out = append(out, it)
	}
	return out
}

// logServed offers the returned items' rows to the feature log, unless the
// request is a shadow or fell back (no model rows).
func (r *Ranker) logServed(res *ranked, a assignment) {
	if a.shadow || r.served == nil || res.fallback || res.meta == nil {
		return
	}
	rec := &rankingv1.ServedRanking{
		RequestId: res.requestID, UserId: res.userID, ModelVersion: res.version, ExperimentId: a.exp.ID, Arm: a.arm.Name,
		ServedAt: timestamppb.Now(), FeatureNames: res.meta.ColumnNames(), Items: make([]*rankingv1.ServedItem, len(res.items)),
	}
	for i, it := range res.items {
		rec.Items[i] = &rankingv1.ServedItem{ItemId: it.GetItemId(), Position: it.GetPosition(), Score: it.GetScore(), Features: res.rows[it.GetItemId()]}
	}
	r.served.Offer(rec)
}

// Predict runs a model on raw rows. The contract has already refused an
// empty input and non-finite numbers (naming the index); the row width
// depends on the model, so it is checked here.
func (r *Ranker) Predict(ctx context.Context, req *rankingv1.PredictRequest) (*rankingv1.PredictResponse, error) {
	var v *modelrt.Version
	var err error
	if req.GetModelVersion() != "" {
		v, err = r.models.Get(req.GetModelVersion())
		if err != nil {
			return nil, status.Error(codes.NotFound, err.Error())
		}
	} else if v, err = r.models.Latest(); err != nil {
		return nil, status.Error(codes.Unavailable, "no model version is ready yet; see ListModels")
	}
	width := len(v.Meta.Features)
	n := len(req.GetInputData())
	if n%width != 0 {
		return nil, status.Errorf(codes.InvalidArgument, "input_data: %d floats is not a whole number of rows of %d (the width of model %s)", n, width, v.Version)
	}
	if n/width > MaxCandidates {
		return nil, status.Errorf(codes.InvalidArgument, "input_data: %d rows, at most %d", n/width, MaxCandidates)
	}
	scores, err := v.Score(req.GetInputData(), nil)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "model %s: %v; retry", v.Version, err)
	}
	return &rankingv1.PredictResponse{Scores: scores, ModelVersion: v.Version, Provider: string(v.Provider())}, nil
}

// ListModels reports the registry.
func (r *Ranker) ListModels(ctx context.Context, req *rankingv1.ListModelsRequest) (*rankingv1.ListModelsResponse, error) {
	resp := &rankingv1.ListModelsResponse{}
	latest, _ := r.models.Latest()
	for _, in := range r.models.List() {
		if req.GetName() != "" && req.GetName() != in.Name {
			continue
		}
		mi := &rankingv1.ModelInfo{
			Name: in.Name, Version: in.Version, State: modelState(in.State), Provider: string(in.Provider), Error: in.Error,
			WarmupDuration: durationpb.New(in.WarmupTook),
		}
		for _, b := range in.WarmupBatchSizes {
			mi.WarmupBatchSizes = append(mi.WarmupBatchSizes, int32(b))
		}
		if in.FallbackReason != "" {
			mi.Error = "execution provider auto chose the CPU: " + in.FallbackReason
		}
		if in.Meta != nil {
			mi.InputWidth = int32(len(in.Meta.Features))
			mi.Metrics = in.Meta.Metrics
			mi.CreatedAt = timestamppb.New(in.Meta.CreatedAt)
			for _, f := range in.Meta.Features {
				mi.FeatureNames = append(mi.FeatureNames, f.Name)
			}
		}
		for _, a := range r.exp.Load().Arms {
			if a.ModelVersion == in.Version || (a.ModelVersion == "" && latest != nil && latest.Version == in.Version) {
				mi.Arms = append(mi.Arms, a.Name)
			}
		}
		resp.Models = append(resp.Models, mi)
	}
	return resp, nil
}

func modelState(s modelrt.State) rankingv1.ModelState {
	switch s {
	case modelrt.Loading:
		return rankingv1.ModelState_MODEL_STATE_LOADING
	case modelrt.Warming:
		return rankingv1.ModelState_MODEL_STATE_WARMING
	case modelrt.Ready:
		return rankingv1.ModelState_MODEL_STATE_READY
	case modelrt.Failed:
		return rankingv1.ModelState_MODEL_STATE_FAILED
	case modelrt.Unloaded:
		return rankingv1.ModelState_MODEL_STATE_UNLOADED
	}
	return rankingv1.ModelState_MODEL_STATE_UNSPECIFIED
}

func newRequestID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}
