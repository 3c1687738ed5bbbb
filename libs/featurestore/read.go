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
	var v value
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
		b.entity(h)
		for c := range defs {
			b.user(&defs[c], recent, history, &v)
			fs.Features[defs[c].Name] = b.message(defs[c].Kind, &v)
		}
		out[i] = fs
	}
	return out, nil
}

// Items reads item features as Users reads user features, in one round trip.
func (s *Store) Items(ctx context.Context, ids, names []string) ([]*featurev1.FeatureSet, error) {
	defs, hashes, err := s.readItems(ctx, ids, names)
	if err != nil {
		return nil, err
	}
	b := newBuilder(s.now(), len(ids)*len(defs))
	var v value
	out := make([]*featurev1.FeatureSet, len(ids))
	for i, id := range ids {
		h := hashes[i].Val()
		fs := &featurev1.FeatureSet{EntityId: id, Missing: len(h) == 0, Features: make(map[string]*featurev1.Feature, len(defs))}
		b.entity(h)
		for c := range defs {
			b.item(&defs[c], &v)
			fs.Features[defs[c].Name] = b.message(defs[c].Kind, &v)
		}
		out[i] = fs
	}
	return out, nil
}

// readItems checks a read of the named item features and reads the hashes
// of ids in one pipelined round trip.
func (s *Store) readItems(ctx context.Context, ids, names []string) ([]Def, []*redis.MapStringStringCmd, error) {
	k := s.keys()
	defs, err := s.checkRead("item_ids", ids, names, ItemFeatures, itemDefaults)
	if err != nil {
		return nil, nil, err
	}
	pipe := s.rdb.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		hashes[i] = pipe.HGetAll(ctx, k.itemKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, nil, fmt.Errorf("redis: read %d items: %w", len(ids), err)
	}
	return defs, hashes, nil
}

// ItemColumns reads item features as Items does, laid out column by
// column (docs/architecture.md, "Columns for batch reads"): each feature
// once, its values in the order of ids, with per-value missing flags.
// Values go straight from the replies into the columns, with no message
// per value and no age: a batch read costs little more than the reads.
func (s *Store) ItemColumns(ctx context.Context, ids, names []string) (*featurev1.FeatureColumns, error) {
	defs, hashes, err := s.readItems(ctx, ids, names)
	if err != nil {
		return nil, err
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
	lists := make([]featurev1.StringList, n*len(out.Lists)) // allocated at once, as the number columns are
	dec := decoder{now: s.now()}
	var v value
	for i := range ids {
		h := hashes[i].Val()
		out.Missing[i] = len(h) == 0
		dec.entity(h)
		for c := range defs {
			dec.item(&defs[c], &v)
			col := &cols[c]
			switch {
			case col.num != nil:
				col.num.Values[i] = v.num
			case col.text != nil:
				col.text.Values[i] = v.text
			default:
				l := &lists[0]
				lists, l.Values = lists[1:], v.list
				col.list.Values[i] = l
			}
			if v.missing {
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

// value is one feature of one entity as read, before it becomes a
// message or a column value. Its kind is its Def's.
type value struct {
	num     float64
	text    string
	list    []string
	weights map[string]float64
	missing bool
	// at is when the value last changed, or stamp the hash field that
	// holds it in milliseconds (attributes share one): zero and "" when
	// unknown.
	at    time.Time
	stamp string
}

// decoder turns one entity's hash into values at its read time. It writes
// into a value it is given and decodes and decays each counter once (ctr
// reads the 7-day ones again): a 500-item read decodes thousands.
type decoder struct {
	now     time.Time
	h       map[string]string
	decayed []decayedCounter
}

type decayedCounter struct {
	field string
	value float64
	at    time.Time
	ok    bool
}

// entity starts the values of the entity whose hash is h.
func (d *decoder) entity(h map[string]string) {
	d.h, d.decayed = h, d.decayed[:0]
}

// counter is a counter field of the entity decayed to now.
func (d *decoder) counter(field string, halfLife time.Duration) decayedCounter {
	for _, c := range d.decayed {
		if c.field == field {
			return c
		}
	}
	c := decayedCounter{field: field}
	if raw, ok := decodeCounter(d.h[field]); ok {
		c.value, c.at, c.ok = raw.ValueAt(d.now, halfLife), raw.at, true
	}
	d.decayed = append(d.decayed, c)
	return c
}

func (d *decoder) user(def *Def, recent, history []redis.Z, v *value) {
	*v = value{}
	switch def.Name {
	case "age":
		d.number(profileTag+"age", profileTag+"ts", v)
	case "gender", "occupation", "zip_code":
		d.text(profileTag+def.Name, profileTag+"ts", v)
	case "ctr":
		d.ctr(v)
	case "category_affinity":
		d.affinity(v)
	case "recent_clicks":
		itemSet(recent[:min(len(recent), RecentClicks)], v)
	case "clicked":
		itemSet(recent, v)
	case "history":
		itemSet(history, v)
	default:
		d.counterValue(def, v)
	}
}

func (d *decoder) item(def *Def, v *value) {
	*v = value{}
	switch def.Name {
	case "title":
		d.text(attrTag+"title", attrTag+"ts", v)
	case "year":
		d.number(attrTag+"year", attrTag+"ts", v)
	case "categories":
		raw, ok := d.h[attrTag+"categories"]
		v.list, v.missing = splitCategories(raw), !ok
		if ok {
			v.stamp = attrTag + "ts"
		}
	case "ctr":
		d.ctr(v)
	case "trending_score":
		score, err := strconv.ParseFloat(d.h[trendField], 64)
		if err != nil {
			v.missing = true
			return
		}
		v.num = trendingValue(score, d.now)
	default:
		d.counterValue(def, v)
	}
}

// itemSet is a sorted set of item → time (ms), read newest first, as a
// list of item ids that changed when the newest was added.
func itemSet(zs []redis.Z, v *value) {
	v.list = make([]string, len(zs))
	for i, z := range zs {
		v.list[i] = z.Member.(string)
	}
	v.missing = len(zs) == 0
	if len(zs) > 0 {
		v.at = time.UnixMilli(int64(zs[0].Score))
	}
}

func (d *decoder) number(field, stamp string, v *value) {
	n, err := strconv.ParseFloat(d.h[field], 64)
	if err != nil {
		v.missing = true
		return
	}
	v.num, v.stamp = n, stamp
}

func (d *decoder) text(field, stamp string, v *value) {
	t, ok := d.h[field]
	if !ok {
		v.missing = true
		return
	}
	v.text, v.stamp = t, stamp
}

func (d *decoder) counterValue(def *Def, v *value) {
	c := d.counter(def.field, def.halfLife)
	v.num, v.at, v.missing = c.value, c.at, !c.ok
}

func (d *decoder) ctr(v *value) {
	week := horizons[len(horizons)-1].halfLife
	clicks, imps := d.counter(weekClicks, week), d.counter(weekImpressions, week)
	v.num = (clicks.value + CTRPrior*CTRPriorWeight) / (imps.value + CTRPriorWeight)
	switch {
	case !clicks.ok && !imps.ok:
		v.missing = true
	case !imps.ok || (clicks.ok && clicks.at.After(imps.at)):
		v.at = clicks.at
	default:
		v.at = imps.at
	}
}

func (d *decoder) affinity(v *value) {
	v.weights = map[string]float64{}
	for field, raw := range d.h {
		cat, ok := strings.CutPrefix(field, affinityTag)
		if !ok {
			continue
		}
		if c, ok := decodeCounter(raw); ok {
			v.weights[cat] = c.ValueAt(d.now, AffinityHalfLife)
			if c.at.After(v.at) {
				v.at = c.at
			}
		}
	}
	v.missing = len(v.weights) == 0
}

// builder makes the feature messages of one read. It allocates them in
// bulk and shares the age of equal timestamps: a 500-entity read makes
// thousands of small messages, and their allocation dominated its cost.
type builder struct {
	decoder
	feats  []featurev1.Feature
	nums   []featurev1.Feature_Number
	lastAt time.Time
	last   *durationpb.Duration
}

func newBuilder(now time.Time, n int) *builder {
	return &builder{decoder: decoder{now: now}, feats: make([]featurev1.Feature, n), nums: make([]featurev1.Feature_Number, n)}
}

// message is v as a Feature of kind k, with its age.
func (b *builder) message(k Kind, v *value) *featurev1.Feature {
	f := &b.feats[0]
	b.feats = b.feats[1:]
	switch k {
	case Number:
		n := &b.nums[0]
		b.nums = b.nums[1:]
		n.Number = v.num
		f.Value = n
	case Text:
		f.Value = &featurev1.Feature_Text{Text: v.text}
	case List:
		f.Value = &featurev1.Feature_List{List: &featurev1.StringList{Values: v.list}}
	case Weights:
		f.Value = &featurev1.Feature_Weights{Weights: &featurev1.WeightMap{Weights: v.weights}}
	}
	f.Missing = v.missing
	at := v.at
	if v.stamp != "" {
		if ms, err := strconv.ParseInt(b.h[v.stamp], 10, 64); err == nil {
			at = time.UnixMilli(ms)
		}
	}
	if !at.IsZero() {
		f.Age = b.age(at)
	}
	return f
}

// age is the time since at. Messages of one read share equal ages; they are
// never modified after the read.
func (b *builder) age(at time.Time) *durationpb.Duration {
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
