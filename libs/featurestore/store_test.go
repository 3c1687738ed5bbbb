package featurestore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	featurev1 "github.com/recsys/recsys/gen/go/recsys/feature/v1"
	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/testenv"
)

// backend is one kind of Redis the same tests run against.
type backend struct {
	name string
	open func(t *testing.T) (redis.UniversalClient, string)
}

var backends = []backend{
	{"miniredis", func(t *testing.T) (redis.UniversalClient, string) {
		m := miniredis.RunT(t)
		return redis.NewClient(&redis.Options{Addr: m.Addr()}), "t:"
	}},
	{"redis", func(t *testing.T) (redis.UniversalClient, string) {
		env := testenv.NewRedis(t)
		return redis.NewClient(&redis.Options{Addr: env.Addr}), env.Prefix
	}},
	{"cluster", func(t *testing.T) (redis.UniversalClient, string) {
		env := testenv.NewRedisCluster(t)
		c, _, err := Dial("cluster://" + env.Addr)
		if err != nil {
			t.Fatal(err)
		}
		return c, env.Prefix
	}},
}

// perPart is a miniredis behind a one-shard Ring: not a *redis.Client, so
// the store applies events part by part as on Redis Cluster. It tests that
// path where no cluster is at hand (Ring has no key scan: no generation
// copy or drop).
var perPart = backend{"miniredis-per-part", func(t *testing.T) (redis.UniversalClient, string) {
	m := miniredis.RunT(t)
	return redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"one": m.Addr()}}), "t:"
}}

// forEachBackend runs f against every backend with a store whose clock is
// fixed at now.
func forEachBackend(t *testing.T, now time.Time, f func(t *testing.T, s *Store, rdb redis.UniversalClient)) {
	forBackends(t, backends, now, f)
}

func forBackends(t *testing.T, backends []backend, now time.Time, f func(t *testing.T, s *Store, rdb redis.UniversalClient)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rdb, prefix := b.open(t)
			t.Cleanup(func() { rdb.Close() })
			s, err := New(rdb, prefix, WithClock(func() time.Time { return now }))
			if err != nil {
				t.Fatal(err)
			}
			f(t, s, rdb)
		})
	}
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func num(t *testing.T, fs *featurev1.FeatureSet, name string) float64 {
	t.Helper()
	f, ok := fs.GetFeatures()[name]
	if !ok {
		t.Fatalf("%s has no feature %q", fs.GetEntityId(), name)
	}
	return f.GetNumber()
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestFeatureStore(t *testing.T) {
	now := t0.Add(24 * time.Hour)
	forEachBackend(t, now, func(t *testing.T, s *Store, _ redis.UniversalClient) {
		ctx := context.Background()
		if err := s.UpsertUsers(ctx, []*userfeaturesv1.UserProfile{{UserId: "u1", Age: 31, Gender: "F", Occupation: "writer"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.UpsertItems(ctx, []*itemfeaturesv1.ItemAttributes{
			{ItemId: "i1", Title: "Heat", Categories: []string{"Action", "Crime"}, Year: 1995},
			{ItemId: "i2", Title: "Babe", Categories: []string{"Comedy"}, Year: 1995},
		}); err != nil {
			t.Fatal(err)
		}
		events := []Event{
			{ID: "e1", Kind: Impression, UserID: "u1", ItemID: "i1", Time: t0},
			{ID: "e2", Kind: Click, UserID: "u1", ItemID: "i1", Time: t0},
			{ID: "e3", Kind: Impression, UserID: "u1", ItemID: "i2", Time: t0.Add(23 * time.Hour)},
			{ID: "e4", Kind: Click, UserID: "u1", ItemID: "i2", Time: t0.Add(23 * time.Hour)},
		}
		res, err := s.ApplyEvents(ctx, events)
		if err != nil {
			t.Fatal(err)
		}
		if res != (ApplyResult{Applied: 4}) {
			t.Errorf("ApplyEvents = %+v, want 4 applied", res)
		}
		if res, err := s.ApplyEvents(ctx, events); err != nil || res != (ApplyResult{Duplicates: 4}) {
			t.Errorf("ApplyEvents again = %+v, %v; want 4 duplicates", res, err)
		}

		users, err := s.Users(ctx, []string{"u1", "ghost"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		u := users[0]
		for _, tc := range []struct {
			name string
			want float64
		}{
			{"age", 31},
			// one click a day ago (one half-life of clicks_1d) and one an hour ago
			{"clicks_1d", 0.5 + math.Exp2(-1.0/24)},
			{"clicks_1h", math.Exp2(-24) + 0.5},
			{"impressions_7d", math.Exp2(-1.0/7) + math.Exp2(-1.0/(7*24))},
		} {
			if got := num(t, u, tc.name); !near(got, tc.want) {
				t.Errorf("user %s = %v, want %v", tc.name, got, tc.want)
			}
		}
		if c, i := num(t, u, "clicks_7d"), num(t, u, "impressions_7d"); !near(num(t, u, "ctr"), (c+CTRPrior*CTRPriorWeight)/(i+CTRPriorWeight)) {
			t.Errorf("user ctr = %v, want smoothed %v/%v", num(t, u, "ctr"), c, i)
		}
		aff := u.GetFeatures()["category_affinity"].GetWeights().GetWeights()
		if !near(aff["Comedy"], math.Exp2(-1.0/(7*24))) || !near(aff["Action"], math.Exp2(-1.0/7)) || !near(aff["Crime"], aff["Action"]) {
			t.Errorf("category_affinity = %v", aff)
		}
		if got := u.GetFeatures()["recent_clicks"].GetList().GetValues(); !slices.Equal(got, []string{"i2", "i1"}) {
			t.Errorf("recent_clicks = %v, want [i2 i1] (newest first)", got)
		}
		if got := u.GetFeatures()["clicks_1h"].GetAge().AsDuration(); got != time.Hour {
			t.Errorf("clicks_1h age = %v, want 1h", got)
		}
		if u.GetMissing() || u.GetFeatures()["age"].GetMissing() {
			t.Errorf("known user flagged missing: %v", u)
		}

		ghost := users[1]
		if !ghost.GetMissing() || !ghost.GetFeatures()["clicks_1d"].GetMissing() || num(t, ghost, "ctr") != CTRPrior {
			t.Errorf("unknown user = %v, want missing with defaults (ctr %v)", ghost, CTRPrior)
		}

		items, err := s.Items(ctx, []string{"i1", "i2"}, []string{"title", "categories", "trending_score", "clicks_1d"})
		if err != nil {
			t.Fatal(err)
		}
		if got := items[0].GetFeatures()["title"].GetText(); got != "Heat" {
			t.Errorf("i1 title = %q", got)
		}
		if got := items[0].GetFeatures()["categories"].GetList().GetValues(); !slices.Equal(got, []string{"Action", "Crime"}) {
			t.Errorf("i1 categories = %v", got)
		}
		if len(items[0].GetFeatures()) != 4 {
			t.Errorf("asked for 4 features, got %d", len(items[0].GetFeatures()))
		}
		// trending: (1 click + 0.1 impression) decayed over one trending half-life, and one hour
		wantI1 := 1.1 * 0.5
		wantI2 := 1.1 * math.Exp2(-1.0/24)
		if got := num(t, items[0], "trending_score"); !near(got, wantI1) {
			t.Errorf("i1 trending_score = %v, want %v", got, wantI1)
		}
		top, err := s.Trending(ctx, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(top) != 2 || top[0].ItemID != "i2" || !near(top[0].Score, wantI2) {
			t.Errorf("Trending = %+v, want i2 (%v) first", top, wantI2)
		}
		if top, _ := s.Trending(ctx, "Crime", 10); len(top) != 1 || top[0].ItemID != "i1" {
			t.Errorf("Trending(Crime) = %+v, want [i1]", top)
		}

		// Bad input is refused whole and names what is wrong.
		var unknown *UnknownFeaturesError
		if _, err := s.Users(ctx, []string{"u1"}, []string{"age", "shoe_size"}); !errors.As(err, &unknown) || !slices.Equal(unknown.Names, []string{"shoe_size"}) {
			t.Errorf("Users(shoe_size) = %v, want UnknownFeaturesError naming it", err)
		}
		if _, err := s.Items(ctx, nil, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("Items(no ids) = %v, want ErrInvalid", err)
		}
		if _, err := s.Items(ctx, make([]string, MaxEntitiesPerRead+1), nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("Items(too many) = %v, want ErrInvalid", err)
		}
		err = s.UpsertUsers(ctx, []*userfeaturesv1.UserProfile{{UserId: "u9", Age: 20}, {UserId: "", Age: 20}})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("UpsertUsers(second id empty) = %v, want ErrInvalid", err)
		}
		if us, _ := s.Users(ctx, []string{"u9"}, []string{"age"}); !us[0].GetMissing() {
			t.Error("a rejected batch was half-applied: u9 exists")
		}
	})
}

// TestUpdatesCommute applies the same events in different orders, and in
// overlapping redelivered batches, and expects identical features.
func TestUpdatesCommute(t *testing.T) {
	now := t0.Add(48 * time.Hour)
	rng := rand.New(rand.NewPCG(1, 2))
	var events []Event
	for i := range 200 {
		kind := Impression
		if rng.IntN(4) == 0 {
			kind = Click
		}
		events = append(events, Event{
			ID: fmt.Sprintf("e%d", i), Kind: kind, UserID: fmt.Sprintf("u%d", rng.IntN(3)), ItemID: fmt.Sprintf("i%d", rng.IntN(5)),
			Time: t0.Add(time.Duration(rng.Int64N(int64(47 * time.Hour)))),
		})
	}
	read := func(t *testing.T, s *Store) []*featurev1.FeatureSet {
		us, err := s.Users(context.Background(), []string{"u0", "u1", "u2"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		is, err := s.Items(context.Background(), []string{"i0", "i1", "i2", "i3", "i4"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return append(us, is...)
	}
	var want []*featurev1.FeatureSet
	for order := range 3 {
		forEachBackend(t, now, func(t *testing.T, s *Store, _ redis.UniversalClient) {
			evs := slices.Clone(events)
			if order > 0 {
				rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
			}
			for i := 0; i < len(evs); i += 30 {
				// Each batch is delivered twice, overlapping the next.
				s.ApplyEvents(context.Background(), evs[i:min(i+30, len(evs))])
				if _, err := s.ApplyEvents(context.Background(), evs[max(0, i-10):min(i+40, len(evs))]); err != nil {
					t.Fatal(err)
				}
			}
			got := read(t, s)
			if want == nil {
				want = got
				return
			}
			for i := range got {
				for name, f := range want[i].GetFeatures() {
					g := got[i].GetFeatures()[name]
					if f.GetNumber() != 0 && !near(g.GetNumber(), f.GetNumber()) {
						t.Errorf("order %d: %s.%s = %v, want %v", order, got[i].GetEntityId(), name, g.GetNumber(), f.GetNumber())
					}
				}
			}
		})
	}
}

// TestReadRoundTrips counts the pipelines a 500-entity read sends.
func TestReadRoundTrips(t *testing.T) {
	forEachBackend(t, t0, func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ids := make([]string, 500)
		for i := range ids {
			ids[i] = fmt.Sprintf("item-%d", i)
		}
		// Count steady-state requests: a new connection's handshake
		// (HELLO, CLIENT SETINFO) is not part of a read.
		if _, err := s.Items(context.Background(), ids, nil); err != nil {
			t.Fatal(err)
		}
		var trips, commands atomic.Int64
		rdb.AddHook(countingHook{&trips, &commands})
		if _, err := s.Items(context.Background(), ids, nil); err != nil {
			t.Fatal(err)
		}
		if n := trips.Load(); n > 2 {
			t.Errorf("reading 500 items took %d round trips, want at most 2", n)
		}
		for _, names := range [][]string{nil, {"age", "recent_clicks", "history"}} {
			trips.Store(0)
			if _, err := s.Users(context.Background(), ids, names); err != nil {
				t.Fatal(err)
			}
			if n := trips.Load(); n > 2 {
				t.Errorf("reading 500 users' %v took %d round trips, want at most 2", names, n)
			}
		}
		if commands.Load() < 500 {
			t.Errorf("hook saw %d commands; it is not counting", commands.Load())
		}
	})
}

// countingHook counts round trips: each single command and each pipeline
// is one.
type countingHook struct{ trips, commands *atomic.Int64 }

func (h countingHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h countingHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.trips.Add(1)
		h.commands.Add(1)
		return next(ctx, cmd)
	}
}
func (h countingHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.trips.Add(1)
		h.commands.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func TestDropGeneration(t *testing.T) {
	forEachBackend(t, t0, func(t *testing.T, s *Store, _ redis.UniversalClient) {
		ctx := context.Background()
		old, next := s.WithGeneration(""), s.WithGeneration("g1:")
		for _, g := range []*Store{old, next} {
			if err := g.UpsertItems(ctx, []*itemfeaturesv1.ItemAttributes{{ItemId: "i1", Title: "Heat", Categories: []string{"Crime"}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := g.ApplyEvents(ctx, []Event{{ID: "e1", Kind: Click, UserID: "u1", ItemID: "i1", Time: t0, ExperimentID: "x", Arm: "a"}}); err != nil {
				t.Fatal(err)
			}
		}
		for _, gen := range []string{"", "g1", "g1:*"} { // the active one; not generation names
			if _, err := s.DropGeneration(ctx, gen, nil); !errors.Is(err, ErrInvalid) {
				t.Errorf("DropGeneration(%q): err = %v, want it refused", gen, err)
			}
		}
		if err := s.Switch(ctx, "g1:"); err != nil {
			t.Fatal(err)
		}
		var reported atomic.Int64
		n, err := s.DropGeneration(ctx, "", func(k int) { reported.Add(int64(k)) })
		// user hash, recent clicks, history, item hash, two trending sets,
		// experiment counters and users, and at least one marker
		if err != nil || n < 9 || reported.Load() != int64(n) {
			t.Fatalf("DropGeneration = %d, %v (reported %d); want at least 9 keys, all reported", n, err, reported.Load())
		}
		for _, c := range []struct {
			g    *Store
			left bool
		}{{old, false}, {next, true}} {
			us, err1 := c.g.Users(ctx, []string{"u1"}, []string{"age", "clicks_1d", "recent_clicks", "history"})
			is, err2 := c.g.Items(ctx, []string{"i1"}, nil)
			tr, err3 := c.g.Trending(ctx, "Crime", 10)
			ex, err4 := c.g.Experiment(ctx, "x")
			if err := errors.Join(err1, err2, err3, err4); err != nil {
				t.Fatal(err)
			}
			if got := !us[0].GetMissing() || !is[0].GetMissing() || len(tr) > 0 || len(ex) > 0; got != c.left {
				t.Errorf("generation %q: features left = %v, want %v (user %v, item %v, trending %v, experiment %v)",
					c.g.Generation(), got, c.left, !us[0].GetMissing(), !is[0].GetMissing(), tr, ex)
			}
		}
		if err := s.Refresh(ctx); err != nil || s.Generation() != "g1:" {
			t.Errorf("after the drop the active generation is %q (%v), want g1:", s.Generation(), err)
		}
	})
}

func TestExperimentCounts(t *testing.T) {
	forEachBackend(t, t0, func(t *testing.T, s *Store, _ redis.UniversalClient) {
		ctx := context.Background()
		var events []Event
		for i := range 10 {
			arm, version := "control", "v1"
			if i%2 == 1 {
				arm, version = "treatment", "v2"
			}
			user := fmt.Sprintf("u%d", i%4)
			events = append(events, Event{ID: fmt.Sprintf("imp%d", i), Kind: Impression, UserID: user, ItemID: "i", Time: t0, ExperimentID: "exp1", Arm: arm, ModelVersion: version})
			if i < 3 {
				events = append(events, Event{ID: fmt.Sprintf("clk%d", i), Kind: Click, UserID: user, ItemID: "i", Time: t0, ExperimentID: "exp1", Arm: arm, ModelVersion: version})
			}
		}
		if _, err := s.ApplyEvents(ctx, events); err != nil {
			t.Fatal(err)
		}
		// Again through a store pinned to the same generation (as a
		// rebuild's target is): all duplicates.
		again, err := s.WithGeneration(s.Generation()).ApplyEvents(ctx, events)
		if err != nil || again != (ApplyResult{Duplicates: len(events)}) {
			t.Errorf("applying again = %+v, %v; want all %d duplicates", again, err, len(events))
		}
		got, err := s.Experiment(ctx, "exp1")
		if err != nil {
			t.Fatal(err)
		}
		want := []ArmCounts{
			{Arm: "control", ModelVersion: "v1", Impressions: 5, Clicks: 2, UniqueUsers: 2},
			{Arm: "treatment", ModelVersion: "v2", Impressions: 5, Clicks: 1, UniqueUsers: 2},
		}
		if !slices.Equal(got, want) {
			t.Errorf("Experiment(exp1) = %+v, want %+v", got, want)
		}
		if none, err := s.Experiment(ctx, "nope"); err != nil || len(none) != 0 {
			t.Errorf("Experiment(nope) = %v, %v; want nothing", none, err)
		}
	})
}

// history reads a user's history feature.
func history(t *testing.T, s *Store, user string) *featurev1.Feature {
	t.Helper()
	us, err := s.Users(context.Background(), []string{user}, []string{"history"})
	if err != nil {
		t.Fatal(err)
	}
	return us[0].GetFeatures()["history"]
}

func TestHistory(t *testing.T) {
	now := t0.Add(time.Hour)
	at := func(minute int) time.Time { return t0.Add(time.Duration(minute) * time.Minute) }
	for _, tc := range []struct {
		name   string
		events []Event // of the case's user
		want   []string
		newest time.Time
	}{
		{"clicks, newest first", []Event{
			{ID: "c1", Kind: Click, ItemID: "i1", Time: at(1)},
			{ID: "c2", Kind: Click, ItemID: "i2", Time: at(2)},
		}, []string{"i2", "i1"}, at(2)},
		{"consumed impressions and clicks", []Event{
			{ID: "r1", Kind: Impression, Consumed: true, ItemID: "i1", Time: at(1)},
			{ID: "r3", Kind: Impression, Consumed: true, ItemID: "i3", Time: at(3)},
			{ID: "c2", Kind: Click, ItemID: "i2", Time: at(2)},
		}, []string{"i3", "i2", "i1"}, at(3)},
		{"a plain impression is not consumption", []Event{
			{ID: "s1", Kind: Impression, ItemID: "i1", Time: at(1)},
		}, nil, time.Time{}},
		{"an item counts at its latest consumption, whatever the order", []Event{
			{ID: "c3", Kind: Click, ItemID: "i1", Time: at(3)},
			{ID: "c2", Kind: Click, ItemID: "i2", Time: at(2)},
			{ID: "r1", Kind: Impression, Consumed: true, ItemID: "i1", Time: at(1)},
			{ID: "r4", Kind: Impression, Consumed: true, ItemID: "i2", Time: at(4)},
		}, []string{"i2", "i1"}, at(4)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forBackends(t, append(backends, perPart), now, func(t *testing.T, s *Store, _ redis.UniversalClient) {
				ctx := context.Background()
				events := slices.Clone(tc.events)
				for i := range events {
					events[i].UserID = "u1"
				}
				if res, err := s.ApplyEvents(ctx, events); err != nil || res.Applied != len(events) {
					t.Fatalf("ApplyEvents = %+v, %v; want %d applied", res, err, len(events))
				}
				for _, pass := range []string{"applied", "applied again"} {
					f := history(t, s, "u1")
					if got := f.GetList().GetValues(); !slices.Equal(got, tc.want) {
						t.Errorf("%s: history = %v, want %v", pass, got, tc.want)
					}
					if f.GetMissing() != (len(tc.want) == 0) {
						t.Errorf("%s: history missing = %v, want %v", pass, f.GetMissing(), len(tc.want) == 0)
					}
					if len(tc.want) > 0 && f.GetAge().AsDuration() != now.Sub(tc.newest) {
						t.Errorf("%s: history age = %v, want %v (of the newest)", pass, f.GetAge().AsDuration(), now.Sub(tc.newest))
					}
					if res, err := s.ApplyEvents(ctx, events); err != nil || res.Duplicates != len(events) {
						t.Fatalf("ApplyEvents again = %+v, %v; want %d duplicates", res, err, len(events))
					}
				}
			})
		})
	}
}

// overCap is HistoryLength+5 events like e on distinct items, a second
// apart, and the items of the newest HistoryLength, newest first.
func overCap(e Event) (events []Event, newest []string) {
	events = make([]Event, HistoryLength+5)
	for i := range events {
		events[i] = e
		events[i].ID, events[i].ItemID, events[i].Time = fmt.Sprintf("e%d", i), fmt.Sprintf("i%04d", i), t0.Add(time.Duration(i)*time.Second)
	}
	newest = make([]string, HistoryLength)
	for i := range newest {
		newest[i] = events[len(events)-1-i].ItemID
	}
	return events, newest
}

// TestHistoryCap applies more consumptions than a history keeps, in no
// particular order, and expects the newest HistoryLength.
func TestHistoryCap(t *testing.T) {
	if testing.Short() {
		t.Skip("applies over a thousand events per backend")
	}
	forBackends(t, append(backends, perPart), t0.Add(time.Hour), func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := context.Background()
		events, want := overCap(Event{Kind: Impression, Consumed: true, UserID: "u1"})
		rand.New(rand.NewPCG(3, 4)).Shuffle(len(events), func(i, j int) { events[i], events[j] = events[j], events[i] })
		for _, pass := range []string{"applied", "applied again"} {
			res, err := s.ApplyEvents(ctx, events)
			if err != nil {
				t.Fatal(err)
			}
			if pass == "applied again" && res.Duplicates != len(events) {
				t.Errorf("applying again = %+v, want all %d duplicates", res, len(events))
			}
			if got := history(t, s, "u1").GetList().GetValues(); !slices.Equal(got, want) {
				t.Errorf("%s: history has %d items from %v, want the newest %d from %s", pass, len(got), got[:min(3, len(got))], HistoryLength, want[0])
			}
			// The read stops at HistoryLength too: the cap is on what is kept.
			if n, err := rdb.ZCard(ctx, s.keys().historyKey("u1")).Result(); err != nil || n != HistoryLength {
				t.Errorf("%s: the history set holds %d items (%v), want %d", pass, n, err, HistoryLength)
			}
		}
	})
}

// TestClickedAndRecentClicks checks that one click set serves both
// features: clicked holds the newest HistoryLength clicks, recent_clicks
// its newest RecentClicks.
func TestClickedAndRecentClicks(t *testing.T) {
	if testing.Short() {
		t.Skip("applies over a thousand events per backend")
	}
	forBackends(t, append(backends, perPart), t0.Add(time.Hour), func(t *testing.T, s *Store, rdb redis.UniversalClient) {
		ctx := context.Background()
		events, want := overCap(Event{Kind: Click, UserID: "u1"})
		if _, err := s.ApplyEvents(ctx, events); err != nil {
			t.Fatal(err)
		}
		us, err := s.Users(ctx, []string{"u1"}, []string{"clicked", "recent_clicks"})
		if err != nil {
			t.Fatal(err)
		}
		if got := us[0].GetFeatures()["clicked"].GetList().GetValues(); !slices.Equal(got, want) {
			t.Errorf("clicked has %d items from %v, want the newest %d", len(got), got[:min(3, len(got))], HistoryLength)
		}
		if got := us[0].GetFeatures()["recent_clicks"].GetList().GetValues(); !slices.Equal(got, want[:RecentClicks]) {
			t.Errorf("recent_clicks = %v, want the newest %d clicks %v", got, RecentClicks, want[:RecentClicks])
		}
		us, err = s.Users(ctx, []string{"u1"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := us[0].GetFeatures()["clicked"]; ok || len(us[0].GetFeatures()["recent_clicks"].GetList().GetValues()) != RecentClicks {
			t.Errorf("a read of every feature: clicked present %v, recent_clicks %d; want clicked only by name and %d recent clicks",
				ok, len(us[0].GetFeatures()["recent_clicks"].GetList().GetValues()), RecentClicks)
		}
	})
}

// TestHistoryByNameOnly checks that history, being large, is read only
// when it is named.
func TestHistoryByNameOnly(t *testing.T) {
	forEachBackend(t, t0.Add(time.Hour), func(t *testing.T, s *Store, _ redis.UniversalClient) {
		ctx := context.Background()
		if _, err := s.ApplyEvents(ctx, []Event{{ID: "c1", Kind: Click, UserID: "u1", ItemID: "i1", Time: t0}}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			names []string
			want  bool
		}{
			{nil, false},
			{[]string{"recent_clicks"}, false},
			{[]string{"history"}, true},
			{[]string{"age", "recent_clicks", "history"}, true},
		} {
			us, err := s.Users(ctx, []string{"u1"}, tc.names)
			if err != nil {
				t.Fatal(err)
			}
			f, got := us[0].GetFeatures()["history"]
			if got != tc.want {
				t.Errorf("Users(%v) has history = %v, want %v", tc.names, got, tc.want)
			}
			if got && !slices.Equal(f.GetList().GetValues(), []string{"i1"}) {
				t.Errorf("Users(%v) history = %v, want [i1]", tc.names, f.GetList().GetValues())
			}
			if tc.names == nil && len(us[0].GetFeatures()) != len(UserFeatures)-2 {
				t.Errorf("Users(all) = %d features, want every one of %d but history and clicked", len(us[0].GetFeatures()), len(UserFeatures))
			}
		}
	})
}
