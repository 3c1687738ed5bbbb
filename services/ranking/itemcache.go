package ranking

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	featurev1 "github.com/recsys/recsys/gen/go/recsys/feature/v1"
	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	"github.com/recsys/recsys/libs/featureservice"
	"github.com/recsys/recsys/libs/featurestore"
)

// itemCache holds the item features ranking reads, shared by all requests
// (docs/architecture.md, "Features": "Ranking's item cache"). A request
// reads every candidate's features, and the same few thousand items are
// candidates of most requests: read through the item service each time,
// their transport was most of ranking's CPU.
//
// An entry's real-time features are re-read when older than ttl (the
// freshness budget bounds it), by the first request that finds them stale
// while the others go on with the entry they have; its attributes (title,
// categories, year) only every attrTTL (every ttl while they are not
// stored yet), and at once when the item service reports another feature
// generation (a rebuild switched over), which empties the cache. At most max entries are kept; past that, arbitrary
// ones are evicted. Features a request needs that an entry lacks (a newly
// loaded model reads more) are a miss.
//
// It is safe for concurrent use. Entries are never modified once stored:
// a refresh stores a new FeatureSet, so callers may keep what get returns.
type itemCache struct {
	items   itemfeaturesv1.ItemFeatureServiceClient
	ttl     time.Duration
	attrTTL time.Duration
	max     int
	now     func() time.Time // the clock; tests move it
	m       *itemCacheMetrics

	mu         sync.Mutex
	entries    map[string]*itemEntry
	generation string
}

// itemEntry is one item's cached features.
type itemEntry struct {
	set        *featurev1.FeatureSet
	fetched    time.Time // its real-time features
	attrsUntil time.Time // when its attributes are to be read again
	refreshing bool      // a request is re-reading it
}

type itemCacheMetrics struct {
	lookups *prometheus.CounterVec
	// The lookups by result, resolved once: every request adds to each.
	hit, stale, miss, refresh prometheus.Counter
	age                       prometheus.Histogram
	size                      prometheus.GaugeFunc
}

func newItemCache(items itemfeaturesv1.ItemFeatureServiceClient, ttl, attrTTL time.Duration, max int, reg prometheus.Registerer) *itemCache {
	c := &itemCache{items: items, ttl: ttl, attrTTL: attrTTL, max: max, now: time.Now, entries: map[string]*itemEntry{}}
	c.m = &itemCacheMetrics{
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "recsys_item_cache_lookups_total",
			Help: "Items ranking looked up in its item-feature cache, by result: hit, stale (served while one request re-reads it), refresh (re-read) or miss (read).",
		}, []string{"result"}),
		age: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "recsys_item_cache_age_seconds",
			Help:    "Age of the oldest real-time item features a request was served from ranking's cache.",
			Buckets: []float64{.01, .05, .1, .25, .5, .75, 1, 2, 5},
		}),
		size: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "recsys_item_cache_entries",
			Help: "Items in ranking's item-feature cache.",
		}, func() float64 { c.mu.Lock(); defer c.mu.Unlock(); return float64(len(c.entries)) }),
	}
	c.m.hit, c.m.stale = c.m.lookups.WithLabelValues("hit"), c.m.lookups.WithLabelValues("stale")
	c.m.miss, c.m.refresh = c.m.lookups.WithLabelValues("miss"), c.m.lookups.WithLabelValues("refresh")
	reg.MustRegister(c.m.lookups, c.m.age, c.m.size)
	return c
}

// attribute reports whether a feature is a static item attribute.
func attribute(name string) bool {
	i := slices.IndexFunc(featurestore.ItemFeatures, func(d featurestore.Def) bool { return d.Name == name })
	return i >= 0 && featurestore.ItemFeatures[i].Attribute
}

// get returns the items' features (at least names), in the order of ids,
// reading what the cache lacks or holds too old from the item service. On
// an error the items it could not read are nil, those it could not
// refresh keep their cached features.
func (c *itemCache) get(ctx context.Context, ids, names []string) ([]*featurev1.FeatureSet, error) {
	if c.ttl <= 0 { // no cache
		sets, _, err := c.read(ctx, ids, names)
		return sets, err
	}
	var attrs, live []string
	for _, n := range names {
		if attribute(n) {
			attrs = append(attrs, n)
		} else {
			live = append(live, n)
		}
	}
	out := make([]*featurev1.FeatureSet, len(ids))
	var missing, stale []int // indexes into ids
	var hits, served int
	now := c.now()
	oldest := now
	c.mu.Lock()
	for i, id := range ids {
		e := c.entries[id]
		switch {
		case e == nil || !hasAll(e.set, names) || (len(attrs) > 0 && !now.Before(e.attrsUntil)):
			missing = append(missing, i)
		case len(live) > 0 && now.Sub(e.fetched) >= c.ttl && !e.refreshing:
			e.refreshing = true
			stale = append(stale, i)
		default:
			if len(live) > 0 && now.Sub(e.fetched) >= c.ttl {
				served++
			} else {
				hits++
			}
			out[i] = e.set
			if len(live) > 0 && e.fetched.Before(oldest) {
				oldest = e.fetched
			}
		}
	}
	gen := c.generation
	c.mu.Unlock()
	c.m.hit.Add(float64(hits))
	c.m.stale.Add(float64(served))
	c.m.miss.Add(float64(len(missing)))
	c.m.refresh.Add(float64(len(stale)))
	if len(live) > 0 && oldest.Before(now) {
		c.m.age.Observe(now.Sub(oldest).Seconds())
	}

	var wg sync.WaitGroup
	var missErr, staleErr error
	if len(missing) > 0 {
		wg.Go(func() { missErr = c.fill(ctx, ids, missing, names, out, gen, true) })
	}
	if len(stale) > 0 {
		wg.Go(func() { staleErr = c.fill(ctx, ids, stale, live, out, gen, false) })
	}
	wg.Wait()
	return out, errors.Join(missErr, staleErr)
}

// fill reads the features names of ids[at...] into out and the cache: all
// of them (whole), or the real-time ones of entries it keeps the
// attributes of. gen is the generation the lookup saw.
func (c *itemCache) fill(ctx context.Context, ids []string, at []int, names []string, out []*featurev1.FeatureSet, gen string, whole bool) error {
	want := make([]string, len(at))
	for k, i := range at {
		want[k] = ids[i]
	}
	sets, readGen, err := c.read(ctx, want, names)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if !whole { // serve what the cache holds; the caller says degraded
			for _, i := range at {
				if e := c.entries[ids[i]]; e != nil {
					e.refreshing = false
					out[i] = e.set
				}
			}
		}
		return err
	}
	if readGen != c.generation {
		// Another generation: nothing cached describes it.
		c.entries = map[string]*itemEntry{}
		c.generation = readGen
	}
	for k, i := range at {
		e := &itemEntry{set: sets[k], fetched: now, attrsUntil: now.Add(c.attrTTL)}
		if missingAttributes(sets[k]) {
			// Not loaded yet (the item is new, or its load is under way):
			// look again as soon as real-time features would be.
			e.attrsUntil = now.Add(c.ttl)
		}
		if old := c.entries[ids[i]]; !whole && old != nil && readGen == gen {
			e.set, e.attrsUntil = merged(old.set, sets[k]), old.attrsUntil
		}
		out[i] = e.set
		if _, ok := c.entries[ids[i]]; !ok && len(c.entries) >= c.max {
			for id := range c.entries { // evict one, arbitrarily
				delete(c.entries, id)
				break
			}
		}
		c.entries[ids[i]] = e
	}
	return nil
}

// read reads the items' features from the item service, in parallel
// chunks of at most featurestore.MaxEntitiesPerRead, and the generation
// they were read in. On an error, the items of the chunks that failed are
// nil.
func (c *itemCache) read(ctx context.Context, ids, names []string) ([]*featurev1.FeatureSet, string, error) {
	sets := make([]*featurev1.FeatureSet, len(ids))
	chunks := (len(ids) + featurestore.MaxEntitiesPerRead - 1) / featurestore.MaxEntitiesPerRead
	errs := make([]error, chunks)
	gens := make([]string, chunks)
	var wg sync.WaitGroup
	for k := range chunks {
		lo := k * featurestore.MaxEntitiesPerRead
		chunk := ids[lo:min(lo+featurestore.MaxEntitiesPerRead, len(ids))]
		wg.Go(func() {
			// Columns: each feature named once, numbers packed (see
			// BenchmarkItemTransport for what they save).
			resp, err := c.items.GetItemFeatures(ctx, &itemfeaturesv1.GetItemFeaturesRequest{ItemIds: chunk, FeatureNames: names, Columnar: true})
			var got []*featurev1.FeatureSet
			if err == nil {
				if got = resp.GetItems(); resp.GetColumns() != nil {
					got = featureservice.Sets(resp.GetColumns())
				}
				if len(got) != len(chunk) {
					err = fmt.Errorf("item features: %d answers for %d ids", len(got), len(chunk))
				}
			}
			if errs[k] = err; err == nil {
				copy(sets[lo:], got)
				gens[k] = resp.GetGeneration()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return sets, "", err
	}
	for _, g := range gens[1:] {
		if g != gens[0] {
			return sets, "", errors.New("item features: the generation switched during the read; retry")
		}
	}
	return sets, gens[0], nil
}

// missingAttributes reports whether set lacks a stored attribute it
// carries (the store answered the default).
func missingAttributes(set *featurev1.FeatureSet) bool {
	if set.GetMissing() {
		return true
	}
	for name, f := range set.GetFeatures() {
		if f.GetMissing() && attribute(name) {
			return true
		}
	}
	return false
}

// hasAll reports whether set carries every feature of names.
func hasAll(set *featurev1.FeatureSet, names []string) bool {
	for _, n := range names {
		if _, ok := set.GetFeatures()[n]; !ok {
			return false
		}
	}
	return true
}

// merged is old with the features of fresh replacing its own.
func merged(old, fresh *featurev1.FeatureSet) *featurev1.FeatureSet {
	fs := make(map[string]*featurev1.Feature, len(old.GetFeatures())+len(fresh.GetFeatures()))
	maps.Copy(fs, old.GetFeatures())
	maps.Copy(fs, fresh.GetFeatures())
	return &featurev1.FeatureSet{EntityId: old.GetEntityId(), Missing: old.GetMissing() && fresh.GetMissing(), Features: fs}
}
