package ranking

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	ort "github.com/yalue/onnxruntime_go"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/libs/featureservice"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/modelrt/modeltest"
	"github.com/recsys/recsys/libs/retrieval"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

var benchFeatures = []map[string]any{
	{"name": "u_ctr", "source": "user.ctr", "default": 0.05},
	{"name": "u_clicks", "source": "user.clicks_7d", "default": 0, "transform": "log1p"},
	{"name": "u_age", "source": "user.age", "default": 30},
	{"name": "i_ctr", "source": "item.ctr", "default": 0.05},
	{"name": "i_clicks_1d", "source": "item.clicks_1d", "default": 0, "transform": "log1p"},
	{"name": "i_clicks_7d", "source": "item.clicks_7d", "default": 0, "transform": "log1p"},
	{"name": "i_imps_7d", "source": "item.impressions_7d", "default": 0, "transform": "log1p"},
	{"name": "i_trend", "source": "item.trending_score", "default": 0, "transform": "log1p"},
	{"name": "i_year", "source": "item.year", "default": 1990},
	{"name": "affinity", "source": "user_item.category_affinity", "default": 0},
	{"name": "recent", "source": "user_item.recent_click", "default": 0},
	{"name": "item_bucket", "source": "item_id", "default": 0, "transform": "hash"},
}

// benchRig is ranking over live feature services (gRPC on loopback, Redis)
// with n items in the catalogue.
type benchRig struct {
	r      *Ranker
	store  *featurestore.Store
	reg    *modelrt.Registry
	root   string
	ids    []string
	trips  *atomic.Int64
	health healthpb.HealthClient
}

func newBenchRig(b *testing.B, n int) *benchRig {
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		b.Skipf("no ONNX Runtime: %v", err)
	}
	env := testenv.NewRedis(b)
	rdb := redis.NewClient(&redis.Options{Addr: env.Addr})
	b.Cleanup(func() { rdb.Close() })
	var trips atomic.Int64
	rdb.AddHook(tripHook{&trips})
	store, _ := featurestore.New(rdb, env.Prefix)
	ctx := context.Background()
	ids := make([]string, n)
	items := make([]*itemfeaturesv1.ItemAttributes, n)
	var events []featurestore.Event
	for i := range ids {
		ids[i] = fmt.Sprintf("item-%d", i)
		items[i] = &itemfeaturesv1.ItemAttributes{ItemId: ids[i], Title: "T" + ids[i], Categories: []string{[]string{"Drama", "Comedy", "Action"}[i%3]}, Year: 1990}
		// Another user's clicks make every item trend; the bench user has
		// consumed a few (Recommend never offers those again).
		events = append(events, featurestore.Event{ID: "e" + ids[i], Kind: featurestore.Click, UserID: "crowd", ItemID: ids[i], Time: time.Now()})
		if i%(max(n/50, 1)) == 0 {
			events = append(events, featurestore.Event{ID: "b" + ids[i], Kind: featurestore.Click, UserID: "bench-user", ItemID: ids[i], Time: time.Now()})
		}
	}
	for i := 0; i < n; i += 1000 {
		store.UpsertItems(ctx, items[i:min(i+1000, n)])
		store.ApplyEvents(ctx, events[i:min(i+1000, n)])
	}
	store.UpsertUsers(ctx, []*userfeaturesv1.UserProfile{{UserId: "bench-user", Age: 33}})

	logger := testenv.DiscardLogger()
	fsrv := testenv.Serve(b, func(s *serving.Server) {
		m := featureservice.NewMetrics(prometheus.NewRegistry())
		userfeaturesv1.RegisterUserFeatureServiceServer(s.GRPC(), &featureservice.UserServer{Store: store, Metrics: m})
		itemfeaturesv1.RegisterItemFeatureServiceServer(s.GRPC(), &featureservice.ItemServer{Store: store, Metrics: m})
	}, benchLimits)

	root := b.TempDir()
	w := make([]float32, len(benchFeatures))
	for i := range w {
		w[i] = 0.1 * float32(i%5-2)
	}
	l := modeltest.Logistic{W: w, B: -1}
	modeltest.Publish(root, "ctr", "v1", l.ONNX(), l.Metadata("ctr", "v1", time.Now(), benchFeatures))
	reg := modelrt.NewRegistry(modelrt.RegistryConfig{Root: root, Name: "ctr", Warmup: []int{n},
		Session: modelrt.SessionOptions{Provider: modelrt.CPU, IntraOpThreads: 1}, Interval: time.Hour}, nil, logger, prometheus.NewRegistry())
	reg.Scan()
	r := NewRanker(userfeaturesv1.NewUserFeatureServiceClient(fsrv.Conn), itemfeaturesv1.NewItemFeatureServiceClient(fsrv.Conn), reg,
		experiment.Default(), nil, Options{FeatureTimeout: time.Second, Quotas: retrieval.DefaultQuotas()}, logger, prometheus.NewRegistry())
	return &benchRig{r: r, store: store, reg: reg, root: root, ids: ids, trips: &trips, health: healthpb.NewHealthClient(fsrv.Conn)}
}

// quantile is a benchmark's p-quantile in milliseconds.
func quantile(d []time.Duration, p float64) float64 {
	return float64(testenv.Quantile(d, p).Microseconds()) / 1000
}

// BenchmarkRank500 ranks 500 candidates with the shipped model through
// ranking's own gRPC server (its interceptors and marshalling), features
// live: the user and item feature services over gRPC on loopback, reading
// Redis. It reports Rank's p50/p99, the Redis round trips per request,
// inference through modelrt against a bare ONNX Runtime run of the same
// 500-row batch (p99 with p99), and, apart, the time to assemble the rows.
// Targets: p99 ≤ 10 ms, ≤ 2 round trips, inference ≤ 1.3× bare.
func BenchmarkRank500(b *testing.B) {
	rig := newBenchRig(b, 500)
	shipped := rig.publishShipped(b, "shipped", false)
	client := rig.serveRanking(b)
	ctx := context.Background()
	ids, reg, store, trips := rig.ids, rig.reg, rig.store, rig.trips
	req := &rankingv1.RankRequest{UserId: "bench-user", CandidateIds: ids, Limit: 50}

	// Bare ONNX Runtime: the same rows, a tensor, a run.
	v, err := reg.Get("shipped")
	if err != nil {
		b.Fatal(err)
	}
	userSet, _ := store.Users(ctx, []string{"bench-user"}, nil)
	itemSets, _ := store.Items(ctx, ids, nil)
	rows := v.Meta.Rows("bench-user", userSet[0], ids, itemSets, nil, nil)
	so, _ := ort.NewSessionOptions()
	so.SetIntraOpNumThreads(1) // as the ranking service runs it
	defer so.Destroy()
	bare, err := ort.NewDynamicAdvancedSession(shipped, []string{v.Meta.Input}, []string{v.Meta.Output}, so)
	if err != nil {
		b.Fatal(err)
	}
	defer bare.Destroy()
	width := int64(len(v.Meta.Features))
	bareRun := func() {
		in, _ := ort.NewTensor(ort.NewShape(int64(len(ids)), width), rows)
		out := []ort.Value{nil}
		if err := bare.Run([]ort.Value{in}, out); err != nil {
			b.Fatal(err)
		}
		out[0].Destroy()
		in.Destroy()
	}
	var buf, scores []float32
	assemble := func() { buf = v.Meta.Rows("bench-user", userSet[0], ids, itemSets, nil, buf) }
	infer := func() {
		if scores, err = v.Score(rows, scores); err != nil {
			b.Fatal(err)
		}
	}

	var tRank, tBare, tInfer, tAssemble []time.Duration
	var reqs int64
	for range 3 { // open the connections the parallel fetches need
		if _, err := client.Rank(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
	trips.Store(0)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		resp, err := client.Rank(ctx, req)
		if err != nil || resp.GetFeaturesDegraded() || resp.GetModelFallback() || resp.GetModelVersion() != "shipped" {
			b.Fatalf("Rank = %v, %v, %v; want the shipped model, not degraded", resp.GetModelVersion(), resp.GetFeaturesDegraded(), err)
		}
		tRank = append(tRank, time.Since(start))
		reqs++
		start = time.Now()
		bareRun()
		tBare = append(tBare, time.Since(start))
		start = time.Now()
		infer()
		tInfer = append(tInfer, time.Since(start))
		start = time.Now()
		assemble()
		tAssemble = append(tAssemble, time.Since(start))
	}
	b.StopTimer()
	q := quantile
	b.ReportMetric(q(tRank, .5), "rank-p50-ms")
	b.ReportMetric(q(tRank, .99), "rank-p99-ms")
	b.ReportMetric(float64(trips.Load())/float64(reqs), "redis-trips/req")
	b.ReportMetric(q(tBare, .99), "bare-ort-p99-ms")
	b.ReportMetric(q(tInfer, .99)/q(tBare, .99), "inference/bare-ort")
	b.ReportMetric(q(tAssemble, .99), "row-assembly-p99-ms")
	b.ReportMetric(0, "ns/op")
}

// tripHook counts the round trips that carry requests, not the setup a
// new pooled connection sends (HELLO, CLIENT SETINFO, ...).
type tripHook struct{ n *atomic.Int64 }

func (h tripHook) count(cmd redis.Cmder) {
	switch cmd.Name() {
	case "hello", "client", "auth", "select", "readonly":
	default:
		h.n.Add(1)
	}
}

func (h tripHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h tripHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.count(cmd); return next(ctx, cmd) }
}
func (h tripHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.count(cmds[0]); return next(ctx, cmds) }
}

// BenchmarkRankCandidates reports how Rank's latency (the shipped model,
// through ranking's gRPC server) grows with the number of candidates.
func BenchmarkRankCandidates(b *testing.B) {
	rig := newBenchRig(b, 2000)
	rig.publishShipped(b, "shipped", false)
	client := rig.serveRanking(b)
	for _, n := range []int{50, 100, 500, 1000, 2000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			req := &rankingv1.RankRequest{UserId: "bench-user", CandidateIds: rig.ids[:n], Limit: 10}
			var lat []time.Duration
			for b.Loop() {
				start := time.Now()
				if _, err := client.Rank(context.Background(), req); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			b.ReportMetric(quantile(lat, .5), "p50-ms")
			b.ReportMetric(quantile(lat, .99), "p99-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// BenchmarkRecommendQPS runs Recommend from 4 concurrent gRPC clients for
// 3 seconds through ranking's own gRPC server, and reports throughput and
// p99 next to a bare grpc-go round trip (a health check) on the same
// loopback. The version served is the shipped model with a retrieval
// index over a 10k-item catalogue (50 neighbours an item, 32-dim
// vectors), so each request retrieves 350 candidates from a 50-item
// history and ranks them.
func BenchmarkRecommendQPS(b *testing.B) {
	rig := newBenchRig(b, 10_000)
	rig.publishShipped(b, "v2", true)
	client := rig.serveRanking(b)
	ctx := context.Background()
	// One 3-second window whatever b.N is: the measure is a rate.
	{
		var mu sync.Mutex
		var lat []time.Duration
		end := time.Now().Add(3 * time.Second)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for time.Now().Before(end) {
					start := time.Now()
					resp, err := client.Recommend(ctx, &rankingv1.RecommendRequest{UserId: "bench-user", Limit: 10})
					if err != nil || len(resp.GetItems()) == 0 || resp.GetRetrievalFallback() || resp.GetModelVersion() != "v2" {
						b.Errorf("Recommend = %v, %v; want items retrieved by v2", resp, err)
						return
					}
					mu.Lock()
					lat = append(lat, time.Since(start))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		b.ReportMetric(float64(len(lat))/3, "recommend-qps")
		b.ReportMetric(quantile(lat, .99), "recommend-p99-ms")
	}
	var echo []time.Duration
	for range 500 {
		start := time.Now()
		if _, err := rig.health.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			b.Fatal(err)
		}
		echo = append(echo, time.Since(start))
	}
	b.ReportMetric(quantile(echo, .99), "grpc-echo-p99-ms")
	b.ReportMetric(0, "ns/op")
}

// shippedModelEnv names the folder of the model the benchmarks score:
// a version the trainer published (make bench trains one on the demo
// world first), so they measure the model that ships.
const shippedModelEnv = "RECSYS_BENCH_MODEL"

// publishShipped publishes the trainer's model (shippedModelEnv) as
// version into the rig's registry, newest of all, with a retrieval index
// over the rig's catalogue when indexed (50 neighbours an item, 32-dim
// vectors), waits until the registry serves it, and returns its
// model.onnx.
func (rig *benchRig) publishShipped(b *testing.B, version string, indexed bool) string {
	src := os.Getenv(shippedModelEnv)
	if src == "" {
		b.Skipf("%s is not set: run make bench, which trains the shipped model and points it there", shippedModelEnv)
	}
	raw, err := os.ReadFile(filepath.Join(src, "metadata.json"))
	if err != nil {
		b.Fatalf("%s: %v", shippedModelEnv, err)
	}
	var meta map[string]any
	if err := json.Unmarshal(raw, &meta); err != nil {
		b.Fatal(err)
	}
	meta["version"], meta["created_at"] = version, time.Now().Add(time.Minute)
	dir := filepath.Join(rig.root, "ctr", version)
	onnx, err := os.ReadFile(filepath.Join(src, "model.onnx"))
	if err != nil {
		b.Fatalf("%s: %v", shippedModelEnv, err)
	}
	js, _ := json.Marshal(meta)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), onnx, 0o644); err != nil {
		b.Fatal(err)
	}
	if indexed {
		x := &retrieval.Index{Items: rig.ids, Neighbors: make([][]retrieval.Neighbor, len(rig.ids)), Dim: 32,
			Vectors: make([]float32, 32*len(rig.ids)), Popularity: make([]float32, len(rig.ids)), Trend: make([]float32, len(rig.ids))}
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range x.Items {
			for range 50 {
				x.Neighbors[i] = append(x.Neighbors[i], retrieval.Neighbor{Item: int32(rng.IntN(len(x.Items))), Weight: rng.Float32()})
			}
			x.Popularity[i], x.Trend[i] = rng.Float32()*5, rng.Float32()*3
		}
		for i := range x.Vectors {
			x.Vectors[i] = float32(rng.NormFloat64())
		}
		if err := x.Write(filepath.Join(dir, retrieval.FileName)); err != nil {
			b.Fatal(err)
		}
	}
	// metadata.json last: the registry loads a version once it is there.
	if err := os.WriteFile(filepath.Join(dir, "metadata.json"), js, 0o644); err != nil {
		b.Fatal(err)
	}
	rig.reg.Scan()
	if v, err := rig.reg.Latest(); err != nil || v.Version != version || (indexed && v.Retrieval == nil) {
		b.Fatalf("registry serves %v, %v; want %s (with its retrieval index: %v)", v, err, version, indexed)
	}
	return filepath.Join(dir, "model.onnx")
}

// benchLimits gives the bench servers room for the 10k-item rig: 10,000
// candidates in one Rank, their features in one read. The benches have
// always run with 16 MiB; kept so their numbers stay comparable.
func benchLimits(c *serving.Config) { c.MaxRequestBytes = 16 << 20 }

// serveRanking serves the rig's ranker on its own gRPC server (the
// production interceptors) and returns a client of it.
func (rig *benchRig) serveRanking(b *testing.B) rankingv1.RankingServiceClient {
	srv := testenv.Serve(b, func(s *serving.Server) { rankingv1.RegisterRankingServiceServer(s.GRPC(), rig.r) }, benchLimits)
	return rankingv1.NewRankingServiceClient(srv.Conn)
}
