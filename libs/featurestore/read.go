package featurestore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/durationpb"

	featurev1 "github.com/recsys/recsys/gen/go/recsys/feature/v1"
)

// Users reads the named features (when names is empty, all but the
// ByNameOnly ones) of the users, in one pipelined round trip. Unknown users
// come back with defaults and Missing set. Errors: ErrInvalid (wrapped) for
// bad ids or counts, *UnknownFeaturesError for unknown names, otherwise
// Redis failures.
func (s *Store) Users(ctx context.Context, ids, names []string) ([]*featurev1.FeatureSet, error) {
	k := s.keys()
	defs, err := s.checkRead("user_ids", ids, names, UserFeatures, userDefaults)
	if err != nil {
		return nil, err
	}
	wants := func(name string) bool { return slices.ContainsFunc(defs, func(d Def) bool { return d.Name == name }) }
	// recent_clicks is the newest RecentClicks of the click set, clicked
	// all of it (up to HistoryLength): one read serves both.
	wantRecent, wantClicked, wantHistory := wants("recent_clicks"), wants("clicked"), wants("history")
	clickedLen := int64(RecentClicks)
	if wantClicked {
		clickedLen = HistoryLength
	}
	pipe := s.rdb.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	recents := make([]*redis.ZSliceCmd, len(ids))
	histories := make([]*redis.ZSliceCmd, len(ids))
	for i, id := range ids {
		hashes[i] = pipe.HGetAll(ctx, k.userKey(id))
		if wantRecent || wantClicked {
			recents[i] = pipe.ZRevRangeWithScores(ctx, k.recentKey(id), 0, clickedLen-1)
		}
		if wantHistory {
			histories[i] = pipe.ZRevRangeWithScores(ctx, k.historyKey(id), 0, HistoryLength-1)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis: read %d users: %w", len(ids), err)
	}
	b := newBuilder(s.now(), len(ids)*len(defs))
	out := make([]*featurev1.FeatureSet, len(ids))
	for i, id := range ids {
		h := hashes[i].Val()
		var recent, history []redis.Z
		if wantRecent || wantClicked {
			recent = recents[i].Val()
		}
		if wantHistory {
			history = histories[i].Val()
		}
		fs := &featurev1.FeatureSet{EntityId: id, Missing: len(h) == 0 && len(recent) == 0 && len(history) == 0, Features: make(map[string]*featurev1.Feature, len(defs))}
		b.entity()
		for _, d := range defs {
			fs.Features[d.Name] = b.userFeature(d, h, recent, history)
		}
		out[i] = fs
	}
	return out, nil
}

// Items reads item features as Users reads user features, in one round trip.
func (s *Store) Items(ctx context.Context, ids, names []string) ([]*featurev1.FeatureSet, error) {
	k := s.keys()
	defs, err := s.checkRead("item_ids", ids, names, ItemFeatures, itemDefaults)
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		hashes[i] = pipe.HGetAll(ctx, k.itemKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis: read %d items: %w", len(ids), err)
	}
	b := newBuilder(s.now(), len(ids)*len(defs))
	out := make([]*featurev1.FeatureSet, len(ids))
	for i, id := range ids {
		h := hashes[i].Val()
		fs := &featurev1.FeatureSet{EntityId: id, Missing: len(h) == 0, Features: make(map[string]*featurev1.Feature, len(defs))}
		b.entity()
		for _, d := range defs {
			fs.Features[d.Name] = b.itemFeature(d, h)
		}
		out[i] = fs
	}
	return out, nil
}

// ItemColumns reads item features as Items does, laid out column by
// column (docs/architecture.md, "Columns for batch reads"): each feature
// once, its values in the order of ids, with per-value missing flags.
// Without a FeatureSet and a map per item it costs a batch read less; the
// values carry no age.
func (s *Store) ItemColumns(ctx context.Context, ids, names []string) (*featurev1.FeatureColumns, error) {
	k := s.keys()
	defs, err := s.checkRead("item_ids", ids, names, ItemFeatures, itemDefaults)
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		hashes[i] = pipe.HGetAll(ctx, k.itemKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis: read %d items: %w", len(ids), err)
	}
	n := len(ids)
	out := &featurev1.FeatureColumns{EntityIds: slices.Clone(ids), Missing: make([]bool, n)}
	// Each feature's column: one of the three is set, by its kind.
	type column struct {
		num     *featurev1.NumberColumn
		text    *featurev1.TextColumn
		list    *featurev1.ListColumn
		missing *[]bool
	}
	cols := make([]column, len(defs))
	for c, d := range defs {
		switch d.Kind {
		case Number:
			cols[c].num = &featurev1.NumberColumn{Name: d.Name, Values: make([]float64, n)}
			out.Numbers, cols[c].missing = append(out.Numbers, cols[c].num), &cols[c].num.Missing
		case Text:
			cols[c].text = &featurev1.TextColumn{Name: d.Name, Values: make([]string, n)}
			out.Texts, cols[c].missing = append(out.Texts, cols[c].text), &cols[c].text.Missing
		case List:
			cols[c].list = &featurev1.ListColumn{Name: d.Name, Values: make([]*featurev1.StringList, n)}
			out.Lists, cols[c].missing = append(out.Lists, cols[c].list), &cols[c].list.Missing
		default:
			return nil, fmt.Errorf("item feature %s: no column for its kind", d.Name)
		}
	}
	b := newValueBuilder(s.now(), len(defs))
	for i := range ids {
		h := hashes[i].Val()
		out.Missing[i] = len(h) == 0
		b.entity()
		for c, d := range defs {
			f, col := b.itemFeature(d, h), cols[c]
			switch {
			case col.num != nil:
				col.num.Values[i] = f.GetNumber()
			case col.text != nil:
				col.text.Values[i] = f.GetText()
			default:
				col.list.Values[i] = f.GetList()
			}
			if f.GetMissing() {
				if *col.missing == nil {
					*col.missing = make([]bool, n)
				}
				(*col.missing)[i] = true
			}
		}
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
	k := s.keys()
	if limit < 1 || limit > MaxTrending {
		return nil, invalid("limit %d: want 1..%d", limit, MaxTrending)
	}
	zs, err := s.rdb.ZRevRangeWithScores(ctx, k.trendingKey(category), 0, int64(limit-1)).Result()
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

func (s *Store) checkRead(field string, ids, names []string, all, defaults []Def) ([]Def, error) {
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
	return selectDefs(all, defaults, names)
}

// builder makes the feature messages of one read. It allocates them in
// bulk and shares the age of equal timestamps: a 500-entity read makes
// thousands of small messages, and their allocation dominated its cost.
type builder struct {
	now    time.Time
	feats  []featurev1.Feature
	nums   []featurev1.Feature_Number
	lastAt time.Time
	last   *durationpb.Duration
	// values is set by a builder whose messages are read at once and
	// never kept (columns): each entity reuses the same few messages, and
	// no age is computed.
	values    bool
	featArena []featurev1.Feature
	numArena  []featurev1.Feature_Number
	// decoded are the counters of the current entity already parsed (ctr
	// reads the 7-day ones again); reset per entity by entity().
	decoded []decodedCounter
}

type decodedCounter struct {
	field string
	c     Counter
	ok    bool
}

// entity starts the features of the next entity.
func (b *builder) entity() {
	b.decoded = b.decoded[:0]
	if b.values {
		clear(b.featArena)
		clear(b.numArena)
		b.feats, b.nums = b.featArena, b.numArena
	}
}

// counter parses a counter field of the current entity once.
func (b *builder) counter(h map[string]string, field string) (Counter, bool) {
	for _, d := range b.decoded {
		if d.field == field {
			return d.c, d.ok
		}
	}
	c, ok := decodeCounter(h[field])
	b.decoded = append(b.decoded, decodedCounter{field, c, ok})
	return c, ok
}

func newBuilder(now time.Time, n int) *builder {
	return &builder{now: now, feats: make([]featurev1.Feature, n), nums: make([]featurev1.Feature_Number, n)}
}

// newValueBuilder is a builder whose messages are read as soon as they are
// built, at most perEntity of them an entity: it allocates them once.
func newValueBuilder(now time.Time, perEntity int) *builder {
	return &builder{now: now, values: true, featArena: make([]featurev1.Feature, perEntity), numArena: make([]featurev1.Feature_Number, perEntity)}
}

func (b *builder) feature() *featurev1.Feature {
	if len(b.feats) == 0 {
		return &featurev1.Feature{}
	}
	f := &b.feats[0]
	b.feats = b.feats[1:]
	return f
}

func (b *builder) number(v float64) *featurev1.Feature {
	f := b.feature()
	var n *featurev1.Feature_Number
	if len(b.nums) > 0 {
		n, b.nums = &b.nums[0], b.nums[1:]
	} else {
		n = &featurev1.Feature_Number{}
	}
	n.Number = v
	f.Value = n
	return f
}

func (b *builder) missingNumber(v float64) *featurev1.Feature {
	f := b.number(v)
	f.Missing = true
	return f
}

// age is the time since at. Messages of one read share equal ages; they are
// never modified after the read.
func (b *builder) age(at time.Time) *durationpb.Duration {
	if b.values {
		return nil
	}
	if b.last != nil && at.Equal(b.lastAt) {
		return b.last
	}
	d := b.now.Sub(at)
	if d < 0 {
		d = 0
	}
	b.lastAt, b.last = at, durationpb.New(d)
	return b.last
}

func (b *builder) userFeature(d Def, h map[string]string, recent, history []redis.Z) *featurev1.Feature {
	switch d.Name {
	case "age":
		return b.numberField(h, profileTag+"age", profileTag+"ts")
	case "gender", "occupation", "zip_code":
		return b.textField(h, profileTag+d.Name, profileTag+"ts")
	case "ctr":
		return b.ctrFeature(h)
	case "category_affinity":
		return b.affinityFeature(h)
	case "recent_clicks":
		return b.itemSet(recent[:min(len(recent), RecentClicks)])
	case "clicked":
		return b.itemSet(recent)
	case "history":
		return b.itemSet(history)
	}
	return b.counterFeature(d, h)
}

// itemSet is a sorted set of item → time (ms), read newest first, as a
// list of item ids whose age is that of the newest.
func (b *builder) itemSet(zs []redis.Z) *featurev1.Feature {
	f := b.feature()
	ids := make([]string, len(zs))
	for i, z := range zs {
		ids[i] = z.Member.(string)
	}
	f.Value = &featurev1.Feature_List{List: &featurev1.StringList{Values: ids}}
	if len(zs) == 0 {
		f.Missing = true
	} else {
		f.Age = b.age(time.UnixMilli(int64(zs[0].Score)))
	}
	return f
}

func (b *builder) itemFeature(d Def, h map[string]string) *featurev1.Feature {
	switch d.Name {
	case "title":
		return b.textField(h, attrTag+"title", attrTag+"ts")
	case "year":
		return b.numberField(h, attrTag+"year", attrTag+"ts")
	case "categories":
		raw, ok := h[attrTag+"categories"]
		f := b.feature()
		f.Value = &featurev1.Feature_List{List: &featurev1.StringList{Values: splitCategories(raw)}}
		f.Missing = !ok
		if ok {
			f.Age = b.stampAge(h, attrTag+"ts")
		}
		return f
	case "ctr":
		return b.ctrFeature(h)
	case "trending_score":
		score, err := strconv.ParseFloat(h[trendField], 64)
		if err != nil {
			return b.missingNumber(0)
		}
		return b.number(trendingValue(score, b.now))
	}
	return b.counterFeature(d, h)
}

func (b *builder) numberField(h map[string]string, field, stamp string) *featurev1.Feature {
	v, err := strconv.ParseFloat(h[field], 64)
	if err != nil {
		return b.missingNumber(0)
	}
	f := b.number(v)
	f.Age = b.stampAge(h, stamp)
	return f
}

func (b *builder) textField(h map[string]string, field, stamp string) *featurev1.Feature {
	v, ok := h[field]
	f := b.feature()
	f.Value = &featurev1.Feature_Text{Text: v}
	f.Missing = !ok
	if ok {
		f.Age = b.stampAge(h, stamp)
	}
	return f
}

func (b *builder) counterFeature(d Def, h map[string]string) *featurev1.Feature {
	c, ok := b.counter(h, d.field)
	if !ok {
		return b.missingNumber(0)
	}
	f := b.number(c.ValueAt(b.now, d.halfLife))
	f.Age = b.age(c.at)
	return f
}

func (b *builder) ctrFeature(h map[string]string) *featurev1.Feature {
	week := horizons[len(horizons)-1]
	clicks, okC := b.counter(h, weekClicks)
	imps, okI := b.counter(h, weekImpressions)
	c, i := 0.0, 0.0
	if okC {
		c = clicks.ValueAt(b.now, week.halfLife)
	}
	if okI {
		i = imps.ValueAt(b.now, week.halfLife)
	}
	f := b.number((c + CTRPrior*CTRPriorWeight) / (i + CTRPriorWeight))
	switch {
	case !okC && !okI:
		f.Missing = true
	case !okI || (okC && clicks.at.After(imps.at)):
		f.Age = b.age(clicks.at)
	default:
		f.Age = b.age(imps.at)
	}
	return f
}

func (b *builder) affinityFeature(h map[string]string) *featurev1.Feature {
	weights := map[string]float64{}
	var newest time.Time
	for field, raw := range h {
		cat, ok := strings.CutPrefix(field, affinityTag)
		if !ok {
			continue
		}
		if c, ok := decodeCounter(raw); ok {
			weights[cat] = c.ValueAt(b.now, AffinityHalfLife)
			if c.at.After(newest) {
				newest = c.at
			}
		}
	}
	f := b.feature()
	f.Value = &featurev1.Feature_Weights{Weights: &featurev1.WeightMap{Weights: weights}}
	f.Missing = len(weights) == 0
	if len(weights) > 0 {
		f.Age = b.age(newest)
	}
	return f
}

func (b *builder) stampAge(h map[string]string, field string) *durationpb.Duration {
	if b.values {
		return nil
	}
	ms, err := strconv.ParseInt(h[field], 10, 64)
	if err != nil {
		return nil
	}
	return b.age(time.UnixMilli(ms))
}
