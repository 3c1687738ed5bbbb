package ranking

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	featurev1 "github.com/recsys/recsys/gen/go/recsys/feature/v1"
	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/libs/featureservice"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/retrieval"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

// itemSource is an item service whose answers a test changes: every item
// has the title and click count it holds now, in generation gen. It
// records the feature names of every read.
type itemSource struct {
	itemfeaturesv1.ItemFeatureServiceClient
	mu     sync.Mutex
	title  string
	clicks float64
	gen    string
	reads  [][]string // feature names of each read
	ids    int        // items read, over all reads
}

func (s *itemSource) GetItemFeatures(_ context.Context, in *itemfeaturesv1.GetItemFeaturesRequest, _ ...grpc.CallOption) (*itemfeaturesv1.GetItemFeaturesResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads = append(s.reads, slices.Clone(in.GetFeatureNames()))
	s.ids += len(in.GetItemIds())
	out := &itemfeaturesv1.GetItemFeaturesResponse{Generation: s.gen}
	for _, id := range in.GetItemIds() {
		fs := map[string]*featurev1.Feature{}
		for _, n := range in.GetFeatureNames() {
			switch n {
			case "title": // no title: not loaded yet
				fs[n] = &featurev1.Feature{Value: &featurev1.Feature_Text{Text: s.title + " " + id}, Missing: s.title == ""}
			case "clicks_7d":
				fs[n] = num(s.clicks)
			}
		}
		out.Items = append(out.Items, &featurev1.FeatureSet{EntityId: id, Features: fs})
	}
	return out, nil
}

func (s *itemSource) set(title string, clicks float64, gen string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.title, s.clicks, s.gen = title, clicks, gen
}

func (s *itemSource) counts() (reads, ids int, last []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reads) > 0 {
		last = s.reads[len(s.reads)-1]
	}
	return len(s.reads), s.ids, last
}

// testClock is a clock a test moves.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func newTestCache(src *itemSource, ttl time.Duration, size int) (*itemCache, *testClock) {
	clock := &testClock{t: time.Unix(1_700_000_000, 0)}
	c := newItemCache(src, ttl, time.Hour, size, prometheus.NewRegistry())
	c.now = clock.now
	return c, clock
}

func getOne(t *testing.T, c *itemCache, id string, names ...string) *featurev1.FeatureSet {
	t.Helper()
	sets, err := c.get(context.Background(), []string{id}, names)
	if err != nil {
		t.Fatalf("get(%s, %v): %v", id, names, err)
	}
	return sets[0]
}

// TestItemCacheFreshness: within the TTL the cache answers alone; past it
// the real-time features are read again (and only they: the attributes
// stay), so a change shows within one TTL.
func TestItemCacheFreshness(t *testing.T) {
	src := &itemSource{title: "old", clicks: 1}
	c, clock := newTestCache(src, 500*time.Millisecond, 100)
	names := []string{"title", "clicks_7d"}
	if got := getOne(t, c, "a", names...).GetFeatures()["clicks_7d"].GetNumber(); got != 1 {
		t.Fatalf("clicks = %v, want 1", got)
	}
	src.set("new", 2, "")
	clock.advance(400 * time.Millisecond)
	if got := getOne(t, c, "a", names...).GetFeatures()["clicks_7d"].GetNumber(); got != 1 {
		t.Errorf("within the TTL: clicks = %v, want the cached 1", got)
	}
	if reads, _, _ := src.counts(); reads != 1 {
		t.Errorf("within the TTL the item service was read %d times, want once (the first miss)", reads)
	}
	clock.advance(100 * time.Millisecond)
	got := getOne(t, c, "a", names...)
	if n := got.GetFeatures()["clicks_7d"].GetNumber(); n != 2 {
		t.Errorf("after the TTL: clicks = %v, want the new 2", n)
	}
	if title := got.GetFeatures()["title"].GetText(); title != "old a" {
		t.Errorf("after the TTL: title = %q, want the cached attribute %q", title, "old a")
	}
	if _, _, last := src.counts(); !slices.Equal(last, []string{"clicks_7d"}) {
		t.Errorf("the refresh read %v, want the real-time features alone", last)
	}
	// Attributes alone (the display of returned items) never go stale.
	clock.advance(time.Minute)
	before, _, _ := src.counts()
	getOne(t, c, "a", "title")
	if after, _, _ := src.counts(); after != before {
		t.Errorf("reading attributes alone read the item service (%d reads, want %d)", after, before)
	}
}

// TestItemCacheNotLoadedYet: an item read before its attributes were
// loaded is read again after the TTL, not after the attributes' hour.
func TestItemCacheNotLoadedYet(t *testing.T) {
	src := &itemSource{}
	c, clock := newTestCache(src, 500*time.Millisecond, 100)
	if f := getOne(t, c, "a", "title").GetFeatures()["title"]; !f.GetMissing() {
		t.Fatalf("title = %v, want missing", f)
	}
	src.set("loaded", 0, "")
	clock.advance(500 * time.Millisecond)
	if title := getOne(t, c, "a", "title").GetFeatures()["title"].GetText(); title != "loaded a" {
		t.Errorf("one TTL after the load: title %q, want %q", title, "loaded a")
	}
}

// TestItemCacheBounded: the cache never holds more than its size, and
// what it returns is right whatever it evicted.
func TestItemCacheBounded(t *testing.T) {
	src := &itemSource{title: "t", clicks: 3}
	c, _ := newTestCache(src, time.Second, 10)
	for round := range 3 {
		ids := make([]string, 25)
		for i := range ids {
			ids[i] = fmt.Sprintf("i%d", (i+round*7)%40)
		}
		sets, err := c.get(context.Background(), ids, []string{"title", "clicks_7d"})
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range sets {
			if want := "t " + ids[i]; s.GetFeatures()["title"].GetText() != want {
				t.Fatalf("round %d: item %s has title %q, want %q", round, ids[i], s.GetFeatures()["title"].GetText(), want)
			}
		}
		c.mu.Lock()
		n := len(c.entries)
		c.mu.Unlock()
		if n > 10 {
			t.Errorf("round %d: %d entries, want at most 10", round, n)
		}
	}
}

// TestItemCacheGenerationSwitch: when a read reports another feature
// generation, everything cached from the old one goes, attributes too.
func TestItemCacheGenerationSwitch(t *testing.T) {
	src := &itemSource{title: "old", clicks: 1, gen: ""}
	c, clock := newTestCache(src, 500*time.Millisecond, 100)
	if _, err := c.get(context.Background(), []string{"a", "b"}, []string{"title", "clicks_7d"}); err != nil {
		t.Fatal(err)
	}
	src.set("rebuilt", 5, "g1")
	clock.advance(time.Second)
	// The refresh of a's real-time features meets generation g1.
	if got := getOne(t, c, "a", "clicks_7d").GetFeatures()["clicks_7d"].GetNumber(); got != 5 {
		t.Errorf("after the switch: clicks = %v, want 5", got)
	}
	c.mu.Lock()
	_, kept := c.entries["b"]
	gen := c.generation
	c.mu.Unlock()
	if kept || gen != "g1" {
		t.Errorf("after the switch: b still cached %v, generation %q; want the cache emptied, generation g1", kept, gen)
	}
	if title := getOne(t, c, "b", "title").GetFeatures()["title"].GetText(); title != "rebuilt b" {
		t.Errorf("after the switch: b's title = %q, want it read again (%q)", title, "rebuilt b")
	}
}

// TestClickVisibleThroughCache: a click applied to the store shows in
// ranking's scores once the cache's TTL has passed, through the real item
// service, its store and Redis; before that the cached features serve.
func TestClickVisibleThroughCache(t *testing.T) {
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}
	env := testenv.NewRedis(t)
	store, closeStore, err := featurestore.Open(env.Addr, env.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore() })
	ctx := context.Background()
	if err := store.UpsertItems(ctx, []*itemfeaturesv1.ItemAttributes{{ItemId: "i0", Title: "I0", Categories: []string{"Drama"}}, {ItemId: "i1", Title: "I1", Categories: []string{"Drama"}}}); err != nil {
		t.Fatal(err)
	}
	srv := testenv.Serve(t, func(s *serving.Server) {
		itemfeaturesv1.RegisterItemFeatureServiceServer(s.GRPC(), &featureservice.ItemServer{Store: store, Metrics: featureservice.NewMetrics(prometheus.NewRegistry())})
	})
	root := t.TempDir()
	publish(t, root, "v1", model)
	reg := modelrt.NewRegistry(modelrt.RegistryConfig{Root: root, Name: "ctr", Warmup: []int{1},
		Session: modelrt.SessionOptions{Provider: modelrt.CPU, IntraOpThreads: 1}, Interval: time.Hour}, nil, testenv.DiscardLogger(), prometheus.NewRegistry())
	reg.Scan()
	const ttl = 500 * time.Millisecond
	fake := &fakeFeatures{} // user features: defaults
	r := NewRanker(fake, itemfeaturesv1.NewItemFeatureServiceClient(srv.Conn), reg, experiment.Default(), nil,
		Options{FeatureTimeout: 10 * time.Second, Quotas: retrieval.DefaultQuotas(), ItemCacheTTL: ttl, ItemAttributesTTL: time.Hour, ItemCacheSize: 100},
		testenv.DiscardLogger(), prometheus.NewRegistry())
	clock := &testClock{t: time.Now()}
	r.cache.now = clock.now
	score := func() float32 {
		t.Helper()
		resp, err := r.Rank(ctx, &rankingv1.RankRequest{UserId: "u1", CandidateIds: []string{"i0", "i1"}})
		if err != nil || resp.GetFeaturesDegraded() {
			t.Fatalf("Rank = %v, degraded %v", err, resp.GetFeaturesDegraded())
		}
		for _, it := range resp.GetItems() {
			if it.GetItemId() == "i0" {
				return it.GetScore()
			}
		}
		t.Fatal("i0 not ranked")
		return 0
	}
	before := score()
	if _, err := store.ApplyEvents(ctx, []featurestore.Event{{ID: "c1", Kind: featurestore.Click, UserID: "u2", ItemID: "i0", Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if got := score(); got != before {
		t.Errorf("within the TTL the score moved (%v → %v): the cache was not used", before, got)
	}
	clock.advance(ttl)
	if got := score(); got <= before {
		t.Errorf("one TTL (%s) after the click, i0 scores %v, before %v: the click is not visible to ranking", ttl, got, before)
	}
}
