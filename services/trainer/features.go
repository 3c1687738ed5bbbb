package trainer

import (
	"math"
	"slices"
	"sort"
	"time"

	featurev1 "github.com/recsys/recsys/gen/go/recsys/feature/v1"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/modelrt"
)

// DefaultMetadata is the feature list of the trainer's default model: ids
// for embeddings, and the real-time features the stream processor keeps, so
// a click changes the next ranking within a second.
func DefaultMetadata(name, version string) *modelrt.Metadata {
	return &modelrt.Metadata{
		Name: name, Version: version, Input: "features", Output: "score",
		Hashing: modelrt.Hashing{Salt: "recsys", Buckets: 1 << 14},
		Features: []modelrt.Feature{
			{Name: "user_bucket", Source: "user_id", Transform: "hash"},
			{Name: "item_bucket", Source: "item_id", Transform: "hash"},
			{Name: "category_bucket", Source: "item.category", Transform: "hash"},
			{Name: "category_affinity", Source: "user_item.category_affinity", Transform: "log1p"},
			{Name: "recent_click", Source: "user_item.recent_click"},
			{Name: "item_ctr", Source: "item.ctr", Default: featurestore.CTRPrior},
			{Name: "item_clicks", Source: "item.clicks_7d", Transform: "log1p"},
			{Name: "item_trending", Source: "item.trending_score", Transform: "log1p"},
			{Name: "user_ctr", Source: "user.ctr", Default: featurestore.CTRPrior},
		},
	}
}

// Interaction is one impression and whether it was clicked.
type Interaction struct {
	UserID, ItemID string
	Time           time.Time
	Clicked        bool
}

// Example is one training row.
type Example struct {
	UserID, ItemID string
	Row            []float32
	Label          float32
	Time           time.Time
}

// emulator keeps, offline, the real-time features the feature store would
// hold (with the store's own decay), so examples built from a dataset are
// rows the ranking service would have assembled at that time.
type emulator struct {
	meta       *modelrt.Metadata
	categories map[string][]string // item → categories
	itemClicks map[string]featurestore.Counter
	itemImps   map[string]featurestore.Counter
	itemTrend  map[string]featurestore.Counter
	userClicks map[string]featurestore.Counter
	userImps   map[string]featurestore.Counter
	affinity   map[string]map[string]featurestore.Counter
	recent     map[string][]string
}

func newEmulator(meta *modelrt.Metadata, categories map[string][]string) *emulator {
	return &emulator{meta: meta, categories: categories,
		itemClicks: map[string]featurestore.Counter{}, itemImps: map[string]featurestore.Counter{}, itemTrend: map[string]featurestore.Counter{},
		userClicks: map[string]featurestore.Counter{}, userImps: map[string]featurestore.Counter{},
		affinity: map[string]map[string]featurestore.Counter{}, recent: map[string][]string{}}
}

const week = 7 * 24 * time.Hour

func num(v float64) *featurev1.Feature {
	return &featurev1.Feature{Value: &featurev1.Feature_Number{Number: v}}
}

func ctr(c, i featurestore.Counter, now time.Time) float64 {
	return (c.ValueAt(now, week) + featurestore.CTRPrior*featurestore.CTRPriorWeight) / (i.ValueAt(now, week) + featurestore.CTRPriorWeight)
}

// sets are the feature sets of the user and the item at time now.
func (e *emulator) sets(userID, itemID string, now time.Time) (*featurev1.FeatureSet, *featurev1.FeatureSet) {
	weights := map[string]float64{}
	for c, v := range e.affinity[userID] {
		weights[c] = v.ValueAt(now, featurestore.AffinityHalfLife)
	}
	user := &featurev1.FeatureSet{EntityId: userID, Features: map[string]*featurev1.Feature{
		"ctr":               num(ctr(e.userClicks[userID], e.userImps[userID], now)),
		"category_affinity": {Value: &featurev1.Feature_Weights{Weights: &featurev1.WeightMap{Weights: weights}}},
		"recent_clicks":     {Value: &featurev1.Feature_List{List: &featurev1.StringList{Values: e.recent[userID]}}},
	}}
	item := &featurev1.FeatureSet{EntityId: itemID, Features: map[string]*featurev1.Feature{
		"ctr":            num(ctr(e.itemClicks[itemID], e.itemImps[itemID], now)),
		"clicks_7d":      num(e.itemClicks[itemID].ValueAt(now, week)),
		"trending_score": num(e.itemTrend[itemID].ValueAt(now, featurestore.TrendingHalfLife)),
		"categories":     {Value: &featurev1.Feature_List{List: &featurev1.StringList{Values: e.categories[itemID]}}},
	}}
	return user, item
}

// apply folds an interaction into the counters, as the stream processor
// does for its impression and click events.
func (e *emulator) apply(in Interaction) {
	t := in.Time
	e.itemImps[in.ItemID] = e.itemImps[in.ItemID].Add(1, t, week)
	e.userImps[in.UserID] = e.userImps[in.UserID].Add(1, t, week)
	e.itemTrend[in.ItemID] = e.itemTrend[in.ItemID].Add(featurestore.ImpressionTrendingWeight, t, featurestore.TrendingHalfLife)
	if !in.Clicked {
		return
	}
	e.itemClicks[in.ItemID] = e.itemClicks[in.ItemID].Add(1, t, week)
	e.userClicks[in.UserID] = e.userClicks[in.UserID].Add(1, t, week)
	e.itemTrend[in.ItemID] = e.itemTrend[in.ItemID].Add(1, t, featurestore.TrendingHalfLife)
	if e.affinity[in.UserID] == nil {
		e.affinity[in.UserID] = map[string]featurestore.Counter{}
	}
	for _, c := range e.categories[in.ItemID] {
		e.affinity[in.UserID][c] = e.affinity[in.UserID][c].Add(1, t, featurestore.AffinityHalfLife)
	}
	r := slices.DeleteFunc(e.recent[in.UserID], func(id string) bool { return id == in.ItemID })
	e.recent[in.UserID] = append([]string{in.ItemID}, r[:min(len(r), featurestore.RecentClicks-1)]...)
}

// Examples turns interactions (any order) into rows in time order: each
// row holds the features as they were just before its interaction.
func Examples(meta *modelrt.Metadata, categories map[string][]string, ins []Interaction) []Example {
	sort.SliceStable(ins, func(i, j int) bool { return ins[i].Time.Before(ins[j].Time) })
	e := newEmulator(meta, categories)
	out := make([]Example, len(ins))
	for i, in := range ins {
		user, item := e.sets(in.UserID, in.ItemID, in.Time)
		label := float32(0)
		if in.Clicked {
			label = 1
		}
		out[i] = Example{UserID: in.UserID, ItemID: in.ItemID, Row: meta.Rows(in.UserID, user, []string{in.ItemID}, []*featurev1.FeatureSet{item}, nil), Label: label, Time: in.Time}
		e.apply(in)
	}
	return out
}

// split divides examples (in time order) at the given fraction: the
// hold-out is the latest part.
func split(ex []Example, holdout float64) (train, test []Example) {
	cut := int(math.Round(float64(len(ex)) * (1 - holdout)))
	return ex[:cut], ex[cut:]
}
