package ranking

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/libs/featureservice"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/retrieval"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

// faultRig is ranking over real feature services whose Redis sits behind a
// fault proxy.
type faultRig struct {
	proxy  *testenv.FaultProxy
	ranker *Ranker
	users  userfeaturesv1.UserFeatureServiceClient
	readyz string
	ids    []string
	store  *featurestore.Store
}

func newFaultRig(t *testing.T) *faultRig {
	t.Helper()
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}
	env := testenv.NewRedis(t)
	proxy := testenv.NewFaultProxy(t, env.Addr)
	// As featurestore.Dial configures it: the request's deadline bounds
	// every Redis call.
	rdb, closeRedis, err := featurestore.Dial(proxy.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeRedis() })
	store, _ := featurestore.New(rdb, env.Prefix)
	ids := make([]string, 50)
	items := make([]*itemfeaturesv1.ItemAttributes, len(ids))
	for i := range ids {
		ids[i] = fmt.Sprintf("i%d", i)
		items[i] = &itemfeaturesv1.ItemAttributes{ItemId: ids[i], Title: ids[i], Categories: []string{"Drama"}}
	}
	if err := store.UpsertItems(context.Background(), items); err != nil {
		t.Fatal(err)
	}

	logger := testenv.DiscardLogger()
	fsrv := testenv.Serve(t, func(s *serving.Server) {
		m := featureservice.NewMetrics(prometheus.NewRegistry())
		userfeaturesv1.RegisterUserFeatureServiceServer(s.GRPC(), &featureservice.UserServer{Store: store, Metrics: m})
		itemfeaturesv1.RegisterItemFeatureServiceServer(s.GRPC(), &featureservice.ItemServer{Store: store, Metrics: m})
		s.AddCheck("redis", store.Ping)
	}, func(c *serving.Config) {
		// waitReady polls /readyz for the outage and the recovery.
		c.ReadyInterval = 50 * time.Millisecond
	})

	root := t.TempDir()
	publish(t, root, "v1", model)
	reg := modelrt.NewRegistry(modelrt.RegistryConfig{Root: root, Name: "ctr", Warmup: []int{1},
		Session: modelrt.SessionOptions{Provider: modelrt.CPU, IntraOpThreads: 1}, Interval: time.Hour}, nil, logger, prometheus.NewRegistry())
	reg.Scan()
	users := userfeaturesv1.NewUserFeatureServiceClient(fsrv.Conn)
	r := NewRanker(users, itemfeaturesv1.NewItemFeatureServiceClient(fsrv.Conn), reg, experiment.Default(), nil, Options{FeatureTimeout: faultFeatureTimeout, Quotas: retrieval.DefaultQuotas()}, logger, prometheus.NewRegistry())
	return &faultRig{proxy: proxy, ranker: r, users: users, readyz: fsrv.URL("/readyz"), ids: ids, store: store}
}

func (f *faultRig) waitReady(t *testing.T, want int) {
	t.Helper()
	got := 0
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(25 * time.Millisecond) {
		resp, err := http.Get(f.readyz)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got = resp.StatusCode; got == want {
			return
		}
	}
	t.Fatalf("feature service /readyz = %d, want %d", got, want)
}

func (f *faultRig) rank(t *testing.T) (*rankingv1.RankResponse, time.Duration) {
	t.Helper()
	start := time.Now()
	resp, err := f.ranker.Rank(context.Background(), &rankingv1.RankRequest{UserId: "u1", CandidateIds: f.ids, Limit: 10})
	if err != nil {
		t.Fatalf("Rank failed instead of degrading: %v", err)
	}
	return resp, time.Since(start)
}

// TestRedisDown: ranking keeps answering (flagged) while Redis is gone, the
// feature service turns unready and recovers with it.
func TestRedisDown(t *testing.T) {
	f := newFaultRig(t)
	if resp, _ := f.rank(t); resp.GetFeaturesDegraded() {
		t.Fatal("degraded before any fault")
	}
	f.waitReady(t, http.StatusOK)
	goroutines := runtime.NumGoroutine()

	f.proxy.SetDown(true)
	for range 5 {
		resp, took := f.rank(t)
		if !resp.GetFeaturesDegraded() || len(resp.GetItems()) != 10 {
			t.Errorf("with Redis down: %d items, degraded %v; want 10, degraded", len(resp.GetItems()), resp.GetFeaturesDegraded())
		}
		if took > time.Second {
			t.Errorf("with Redis down Rank took %s; the 50ms feature deadline should bound it", took)
		}
	}
	f.waitReady(t, http.StatusServiceUnavailable)

	f.proxy.SetDown(false)
	f.waitReady(t, http.StatusOK)
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, _ := f.rank(t); !resp.GetFeaturesDegraded() {
			break
		}
		if time.Now().After(end) {
			t.Fatal("Rank still degraded 5s after Redis came back")
		}
	}
	// No goroutines (and so no connections) left behind by the outage.
	var now int
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if now = runtime.NumGoroutine(); now <= goroutines+10 {
			break
		}
	}
	if now > goroutines+10 {
		t.Errorf("%d goroutines after the outage, %d before: a leak", now, goroutines)
	}
}

// TestRedisSlow: with Redis far slower than ranking's feature deadline,
// feature fetches hit the deadline and it ranks with defaults instead of
// waiting.
func TestRedisSlow(t *testing.T) {
	f := newFaultRig(t)
	f.rank(t) // warm connections
	const delay = 8 * faultFeatureTimeout
	f.proxy.SetDelay(delay)
	resp, took := f.rank(t)
	if !resp.GetFeaturesDegraded() {
		t.Errorf("with Redis %s slow, the answer is not flagged degraded", delay)
	}
	if took >= delay {
		t.Errorf("Rank took %s: it waited for slow Redis instead of its %s feature deadline", took, faultFeatureTimeout)
	}
	t.Logf("Rank with Redis +%s: %s", delay, took)
}

// faultFeatureTimeout is the fault rig's feature deadline: generous, so a
// busy machine does not degrade the answers the tests expect whole, and
// far below the delays the tests inject.
const faultFeatureTimeout = 250 * time.Millisecond

// TestDeadlinePropagation: a 200ms client deadline over a 1s Redis delay
// ends in DeadlineExceeded well before the delay, and the feature service
// abandons its Redis call.
func TestDeadlinePropagation(t *testing.T) {
	f := newFaultRig(t)
	f.rank(t)
	f.proxy.SetDelay(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := f.users.GetUserFeatures(ctx, &userfeaturesv1.GetUserFeaturesRequest{UserIds: []string{"u1"}})
	took := time.Since(start)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("GetUserFeatures = %v, want DeadlineExceeded", err)
	}
	if took >= time.Second {
		t.Errorf("answered after %s, not at the 200ms deadline", took)
	}
	t.Logf("DeadlineExceeded after %s", took)
	// The Redis call must be abandoned at the deadline, long before the
	// 1s delay would have answered it.
	for f.proxy.Aborted.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
		if time.Since(start) > 800*time.Millisecond {
			t.Fatal("the feature service kept waiting on Redis after its caller's deadline")
		}
	}
}

// TestRankBeyondOneFeatureRead ranks more candidates than one item-feature
// read takes: they are fetched in chunks, not degraded.
func TestRankBeyondOneFeatureRead(t *testing.T) {
	f := newFaultRig(t)
	ids := make([]string, featurestore.MaxEntitiesPerRead+500)
	for i := range ids {
		ids[i] = fmt.Sprintf("i%d", i)
	}
	resp, err := f.ranker.Rank(context.Background(), &rankingv1.RankRequest{UserId: "u1", CandidateIds: ids})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetFeaturesDegraded() || len(resp.GetItems()) != len(ids) {
		t.Errorf("Rank(%d candidates): %d items, degraded %v; want all, not degraded", len(ids), len(resp.GetItems()), resp.GetFeaturesDegraded())
	}
	titled := 0
	for _, it := range resp.GetItems() {
		if it.GetTitle() != "" {
			titled++
		}
	}
	if titled != 50 { // the rig's catalogue: i0..i49 have titles
		t.Errorf("%d items carry their title, want the 50 known ones", titled)
	}
}

// TestRecommendNeverEmpty: when retrieval's reads miss their deadline
// (Redis far slower than it), Recommend answers from the last trending
// list it read whole, ranked by the model and flagged degraded, instead of
// answering nothing.
func TestRecommendNeverEmpty(t *testing.T) {
	f := newFaultRig(t)
	ctx := context.Background()
	var clicks []featurestore.Event
	for i, id := range f.ids[:20] {
		clicks = append(clicks, featurestore.Event{ID: fmt.Sprint("c", i), Kind: featurestore.Click, UserID: "crowd", ItemID: id, Time: time.Now()})
	}
	if _, err := f.store.ApplyEvents(ctx, clicks); err != nil {
		t.Fatal(err)
	}
	req := &rankingv1.RecommendRequest{UserId: "u1", Limit: 5}
	resp, err := f.ranker.Recommend(ctx, req)
	if err != nil || len(resp.GetItems()) != 5 || resp.GetFeaturesDegraded() {
		t.Fatalf("Recommend before any fault = %d items, degraded %v, %v; want 5, not degraded", len(resp.GetItems()), resp.GetFeaturesDegraded(), err)
	}
	f.proxy.SetDelay(8 * faultFeatureTimeout)
	resp, err = f.ranker.Recommend(ctx, req)
	if err != nil {
		t.Fatalf("Recommend with Redis slow: %v", err)
	}
	if len(resp.GetItems()) != 5 || !resp.GetFeaturesDegraded() || resp.GetModelVersion() == "" {
		t.Errorf("Recommend with Redis %s slow = %d items, degraded %v, model %q; want 5 from the last good candidates, degraded, ranked by the model",
			8*faultFeatureTimeout, len(resp.GetItems()), resp.GetFeaturesDegraded(), resp.GetModelVersion())
	}
}
