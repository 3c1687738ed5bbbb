package featurestore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/durationpb"

	featurev1 "github.com/recsys/recsys/gen/go/recsys/feature/v1"
)

// Users reads the named features (all when names is empty) of the users, in
// one pipelined round trip. Unknown users come back with defaults and
// Missing set. Errors: ErrInvalid (wrapped) for bad ids or counts,
// *UnknownFeaturesError for unknown names, otherwise Redis failures.
func (s *Store) Users(ctx context.Context, ids, names []string) ([]*featurev1.FeatureSet, error) {
	defs, err := s.checkRead("user_ids", ids, names, UserFeatures)
	if err != nil {
		return nil, err
	}
	wantRecent := hasDef(defs, "recent_clicks")
	pipe := s.rdb.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	recents := make([]*redis.ZSliceCmd, len(ids))
	for i, id := range ids {
		hashes[i] = pipe.HGetAll(ctx, s.userKey(id))
		if wantRecent {
			recents[i] = pipe.ZRevRangeWithScores(ctx, s.recentKey(id), 0, RecentClicks-1)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis: read %d users: %w", len(ids), err)
	}
	now := s.now()
	out := make([]*featurev1.FeatureSet, len(ids))
	for i, id := range ids {
		h := hashes[i].Val()
		var recent []redis.Z
		if wantRecent {
			recent = recents[i].Val()
		}
		fs := &featurev1.FeatureSet{EntityId: id, Missing: len(h) == 0 && len(recent) == 0, Features: make(map[string]*featurev1.Feature, len(defs))}
		for _, d := range defs {
			fs.Features[d.Name] = userFeature(d, h, recent, now)
		}
		out[i] = fs
	}
	return out, nil
}

// Items reads item features as Users reads user features, in one round trip.
func (s *Store) Items(ctx context.Context, ids, names []string) ([]*featurev1.FeatureSet, error) {
	defs, err := s.checkRead("item_ids", ids, names, ItemFeatures)
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		hashes[i] = pipe.HGetAll(ctx, s.itemKey(id))
	}
	var trending *redis.FloatSliceCmd
	if hasDef(defs, "trending_score") {
		trending = pipe.ZMScore(ctx, s.trendingKey(""), ids...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis: read %d items: %w", len(ids), err)
	}
	now := s.now()
	out := make([]*featurev1.FeatureSet, len(ids))
	for i, id := range ids {
		h := hashes[i].Val()
		fs := &featurev1.FeatureSet{EntityId: id, Missing: len(h) == 0, Features: make(map[string]*featurev1.Feature, len(defs))}
		for _, d := range defs {
			if d.Name == "trending_score" {
				fs.Features[d.Name] = trendingFeature(trending.Val()[i], now)
				continue
			}
			fs.Features[d.Name] = itemFeature(d, h, now)
		}
		out[i] = fs
	}
	return out, nil
}

// TrendingItem is an item and its decayed trending weight.
type TrendingItem struct {
	ItemID string
	Score  float64
}

// MaxTrending bounds ListTrending.
const MaxTrending = 1000

// Trending returns up to limit items with the highest trending score,
// optionally within one category.
func (s *Store) Trending(ctx context.Context, category string, limit int) ([]TrendingItem, error) {
	if limit < 1 || limit > MaxTrending {
		return nil, invalid("limit %d: want 1..%d", limit, MaxTrending)
	}
	zs, err := s.rdb.ZRevRangeWithScores(ctx, s.trendingKey(category), 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: read trending: %w", err)
	}
	now := s.now()
	out := make([]TrendingItem, len(zs))
	for i, z := range zs {
		out[i] = TrendingItem{ItemID: z.Member.(string), Score: trendingValue(z.Score, now)}
	}
	return out, nil
}

func (s *Store) checkRead(field string, ids, names []string, all []Def) ([]Def, error) {
	if len(ids) == 0 {
		return nil, invalid("%s: at least one id is required", field)
	}
	if len(ids) > MaxEntitiesPerRead {
		return nil, invalid("%s: %d ids, at most %d per call", field, len(ids), MaxEntitiesPerRead)
	}
	for i, id := range ids {
		if err := checkID(field, i, id); err != nil {
			return nil, err
		}
	}
	return selectDefs(all, names)
}

func hasDef(defs []Def, name string) bool {
	for _, d := range defs {
		if d.Name == name {
			return true
		}
	}
	return false
}

func userFeature(d Def, h map[string]string, recent []redis.Z, now time.Time) *featurev1.Feature {
	switch d.Name {
	case "age":
		return numberField(h, profileTag+"age", profileTag+"ts", now)
	case "gender", "occupation", "zip_code":
		return textField(h, profileTag+d.Name, profileTag+"ts", now)
	case "ctr":
		return ctrFeature(h, now)
	case "category_affinity":
		return affinityFeature(h, now)
	case "recent_clicks":
		if len(recent) == 0 {
			return &featurev1.Feature{Value: &featurev1.Feature_List{List: &featurev1.StringList{}}, Missing: true}
		}
		ids := make([]string, len(recent))
		for i, z := range recent {
			ids[i] = z.Member.(string)
		}
		return &featurev1.Feature{Value: &featurev1.Feature_List{List: &featurev1.StringList{Values: ids}}, Age: age(now, time.UnixMilli(int64(recent[0].Score)))}
	}
	return counterFeature(d.Name, h, now)
}

func itemFeature(d Def, h map[string]string, now time.Time) *featurev1.Feature {
	switch d.Name {
	case "title":
		return textField(h, attrTag+"title", attrTag+"ts", now)
	case "year":
		return numberField(h, attrTag+"year", attrTag+"ts", now)
	case "categories":
		raw, ok := h[attrTag+"categories"]
		var cats []string
		if ok && json.Unmarshal([]byte(raw), &cats) != nil {
			ok = false
		}
		f := &featurev1.Feature{Value: &featurev1.Feature_List{List: &featurev1.StringList{Values: cats}}, Missing: !ok}
		if ok {
			f.Age = stampAge(h, attrTag+"ts", now)
		}
		return f
	case "ctr":
		return ctrFeature(h, now)
	}
	return counterFeature(d.Name, h, now)
}

func number(v float64) *featurev1.Feature {
	return &featurev1.Feature{Value: &featurev1.Feature_Number{Number: v}}
}

func numberField(h map[string]string, field, stamp string, now time.Time) *featurev1.Feature {
	v, err := strconv.ParseFloat(h[field], 64)
	if err != nil {
		f := number(0)
		f.Missing = true
		return f
	}
	f := number(v)
	f.Age = stampAge(h, stamp, now)
	return f
}

func textField(h map[string]string, field, stamp string, now time.Time) *featurev1.Feature {
	v, ok := h[field]
	f := &featurev1.Feature{Value: &featurev1.Feature_Text{Text: v}, Missing: !ok}
	if ok {
		f.Age = stampAge(h, stamp, now)
	}
	return f
}

func halfLifeOf(name string) time.Duration {
	for _, h := range horizons {
		if strings.HasSuffix(name, "_"+h.suffix) {
			return h.halfLife
		}
	}
	return horizons[len(horizons)-1].halfLife
}

func counterFeature(name string, h map[string]string, now time.Time) *featurev1.Feature {
	c, ok := decodeCounter(h[counterTag+name])
	if !ok {
		f := number(0)
		f.Missing = true
		return f
	}
	f := number(c.valueAt(now, halfLifeOf(name)))
	f.Age = age(now, c.at)
	return f
}

func ctrFeature(h map[string]string, now time.Time) *featurev1.Feature {
	week := horizons[len(horizons)-1]
	clicks, okC := decodeCounter(h[counterTag+"clicks_"+week.suffix])
	imps, okI := decodeCounter(h[counterTag+"impressions_"+week.suffix])
	c, i := 0.0, 0.0
	if okC {
		c = clicks.valueAt(now, week.halfLife)
	}
	if okI {
		i = imps.valueAt(now, week.halfLife)
	}
	f := number((c + CTRPrior*CTRPriorWeight) / (i + CTRPriorWeight))
	switch {
	case !okC && !okI:
		f.Missing = true
	case !okI || (okC && clicks.at.After(imps.at)):
		f.Age = age(now, clicks.at)
	default:
		f.Age = age(now, imps.at)
	}
	return f
}

func affinityFeature(h map[string]string, now time.Time) *featurev1.Feature {
	weights := map[string]float64{}
	var newest time.Time
	for field, raw := range h {
		cat, ok := strings.CutPrefix(field, affinityTag)
		if !ok {
			continue
		}
		if c, ok := decodeCounter(raw); ok {
			weights[cat] = c.valueAt(now, AffinityHalfLife)
			if c.at.After(newest) {
				newest = c.at
			}
		}
	}
	f := &featurev1.Feature{Value: &featurev1.Feature_Weights{Weights: &featurev1.WeightMap{Weights: weights}}, Missing: len(weights) == 0}
	if len(weights) > 0 {
		f.Age = age(now, newest)
	}
	return f
}

func trendingFeature(score float64, now time.Time) *featurev1.Feature {
	// ZMSCORE reports a missing member as nil, which go-redis reads as 0; a
	// real log-score is never 0 after 1970.
	if score == 0 {
		f := number(0)
		f.Missing = true
		return f
	}
	return number(trendingValue(score, now))
}

func stampAge(h map[string]string, field string, now time.Time) *durationpb.Duration {
	ms, err := strconv.ParseInt(h[field], 10, 64)
	if err != nil {
		return nil
	}
	return age(now, time.UnixMilli(ms))
}

func age(now, at time.Time) *durationpb.Duration {
	d := now.Sub(at)
	if d < 0 {
		d = 0
	}
	return durationpb.New(d)
}
