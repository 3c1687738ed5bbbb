package ranking

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	featurev1 "github.com/recsys/recsys/gen/go/recsys/feature/v1"
	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/modelrt/modeltest"
	"github.com/recsys/recsys/libs/retrieval"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

// fakeFeatures serves fixed features; down makes every call fail.
type fakeFeatures struct {
	userfeaturesv1.UserFeatureServiceClient
	itemfeaturesv1.ItemFeatureServiceClient
	users map[string]*featurev1.FeatureSet
	items map[string]*featurev1.FeatureSet
	down  atomic.Bool
}

func num(v float64) *featurev1.Feature {
	return &featurev1.Feature{Value: &featurev1.Feature_Number{Number: v}}
}

func (f *fakeFeatures) GetUserFeatures(ctx context.Context, in *userfeaturesv1.GetUserFeaturesRequest, _ ...grpc.CallOption) (*userfeaturesv1.GetUserFeaturesResponse, error) {
	if f.down.Load() {
		return nil, status.Error(codes.Unavailable, "user features down")
	}
	out := &userfeaturesv1.GetUserFeaturesResponse{}
	for _, id := range in.GetUserIds() {
		s := f.users[id]
		if s == nil {
			s = &featurev1.FeatureSet{EntityId: id, Missing: true}
		}
		out.Users = append(out.Users, s)
	}
	return out, nil
}

func (f *fakeFeatures) GetItemFeatures(ctx context.Context, in *itemfeaturesv1.GetItemFeaturesRequest, _ ...grpc.CallOption) (*itemfeaturesv1.GetItemFeaturesResponse, error) {
	if f.down.Load() {
		return nil, status.Error(codes.Unavailable, "item features down")
	}
	out := &itemfeaturesv1.GetItemFeaturesResponse{}
	for _, id := range in.GetItemIds() {
		s := f.items[id]
		if s == nil {
			s = &featurev1.FeatureSet{EntityId: id, Missing: true}
		}
		out.Items = append(out.Items, s)
	}
	return out, nil
}

func (f *fakeFeatures) ListTrendingItems(ctx context.Context, in *itemfeaturesv1.ListTrendingItemsRequest, _ ...grpc.CallOption) (*itemfeaturesv1.ListTrendingItemsResponse, error) {
	out := &itemfeaturesv1.ListTrendingItemsResponse{}
	for i := range 5 {
		id := fmt.Sprintf("i%d", i)
		if in.GetCategory() != "" && !strings.Contains(strings.Join(f.items[id].GetFeatures()["categories"].GetList().GetValues(), ","), in.GetCategory()) {
			continue
		}
		out.Items = append(out.Items, &itemfeaturesv1.TrendingItem{ItemId: id, Score: float64(5 - i)})
	}
	return out, nil
}

// world: user u1 likes Drama; items i0..i4 with clicks and categories.
func world() *fakeFeatures {
	f := &fakeFeatures{users: map[string]*featurev1.FeatureSet{}, items: map[string]*featurev1.FeatureSet{}}
	f.users["u1"] = &featurev1.FeatureSet{EntityId: "u1", Features: map[string]*featurev1.Feature{
		"ctr":               num(0.2),
		"category_affinity": {Value: &featurev1.Feature_Weights{Weights: &featurev1.WeightMap{Weights: map[string]float64{"Drama": 2, "Comedy": 0.5}}}},
		"recent_clicks":     {Value: &featurev1.Feature_List{List: &featurev1.StringList{Values: []string{"i3"}}}},
		"clicked":           {Value: &featurev1.Feature_List{List: &featurev1.StringList{Values: []string{"i3"}}}},
		"history":           {Value: &featurev1.Feature_List{List: &featurev1.StringList{Values: []string{"i3"}}}},
	}}
	cats := []string{"Drama", "Comedy", "Drama", "Horror", "Comedy"}
	for i := range 5 {
		id := fmt.Sprintf("i%d", i)
		f.items[id] = &featurev1.FeatureSet{EntityId: id, Features: map[string]*featurev1.Feature{
			"clicks_7d":  num(float64(i * 10)),
			"title":      {Value: &featurev1.Feature_Text{Text: "Title " + id}},
			"categories": {Value: &featurev1.Feature_List{List: &featurev1.StringList{Values: []string{cats[i]}}}},
		}}
	}
	return f
}

// model is the logistic model of the tests and its feature list.
var model = modeltest.Logistic{W: []float32{1.5, 0.3, 0.8, -2}, B: -1}

var features = []map[string]any{
	{"name": "user_ctr", "source": "user.ctr", "default": 0.05},
	{"name": "item_clicks", "source": "item.clicks_7d", "default": 0, "transform": "log1p"},
	{"name": "affinity", "source": "user_item.category_affinity", "default": 0},
	{"name": "recent", "source": "user_item.recent_click", "default": 0},
}

// reference is the expected score of (u1, item i), computed by hand.
func reference(f *fakeFeatures, item string) float64 {
	it := f.items[item]
	aff := map[string]float32{"Drama": 2, "Comedy": 0.5}[it.GetFeatures()["categories"].GetList().GetValues()[0]]
	recent := float32(0)
	if item == "i3" {
		recent = 1
	}
	row := []float32{0.2, float32(math.Log1p(it.GetFeatures()["clicks_7d"].GetNumber())), aff, recent}
	return model.Score(row)
}

type rig struct {
	client rankingv1.RankingServiceClient
	infer  rankingv1.InferenceServiceClient
	models rankingv1.ModelServiceClient
	reg    *modelrt.Registry
	root   string
	fake   *fakeFeatures
}

func publish(t testing.TB, root, version string, l modeltest.Logistic) {
	t.Helper()
	if err := modeltest.Publish(root, "ctr", version, l.ONNX(), l.Metadata("ctr", version, time.Now(), features)); err != nil {
		t.Fatal(err)
	}
}

func start(t testing.TB, exp *experiment.Config) *rig {
	t.Helper()
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}
	logger := testenv.DiscardLogger()
	root := t.TempDir()
	reg := modelrt.NewRegistry(modelrt.RegistryConfig{Root: root, Name: "ctr", Warmup: []int{1, 10},
		Session: modelrt.SessionOptions{Provider: modelrt.CPU, IntraOpThreads: 1}, Interval: time.Hour}, exp.Versions, logger, prometheus.NewRegistry())
	f := world()
	r := NewRanker(f, f, reg, exp, nil, Options{FeatureTimeout: 200 * time.Millisecond, Quotas: retrieval.DefaultQuotas()}, logger, prometheus.NewRegistry())
	srv := testenv.Serve(t, func(s *serving.Server) {
		rankingv1.RegisterRankingServiceServer(s.GRPC(), r)
		rankingv1.RegisterInferenceServiceServer(s.GRPC(), r)
		rankingv1.RegisterModelServiceServer(s.GRPC(), r)
	})
	return &rig{client: rankingv1.NewRankingServiceClient(srv.Conn), infer: rankingv1.NewInferenceServiceClient(srv.Conn),
		models: rankingv1.NewModelServiceClient(srv.Conn), reg: reg, root: root, fake: f}
}

var testCandidates = []string{"i0", "i1", "i2", "i3", "i4"}

func TestRankAndPredictMatchTheReference(t *testing.T) {
	r := start(t, experiment.Default())
	publish(t, r.root, "v1", model)
	r.reg.Scan()

	resp, err := r.client.Rank(context.Background(), &rankingv1.RankRequest{UserId: "u1", CandidateIds: testCandidates})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetModelVersion() != "v1" || resp.GetFeaturesDegraded() || resp.GetModelFallback() || resp.GetRequestId() == "" || resp.GetArm() != "control" {
		t.Errorf("Rank = %v, want v1, arm control, a request id, no flags", resp)
	}
	prev := math.Inf(1)
	for i, it := range resp.GetItems() {
		want := reference(r.fake, it.GetItemId())
		if math.Abs(float64(it.GetScore())-want) > 1e-5 {
			t.Errorf("%s: score %v, want %v", it.GetItemId(), it.GetScore(), want)
		}
		if it.GetPosition() != int32(i) || float64(it.GetScore()) > prev {
			t.Errorf("item %d (%s) out of order", i, it.GetItemId())
		}
		prev = float64(it.GetScore())
		if it.GetTitle() != "Title "+it.GetItemId() {
			t.Errorf("%s title = %q", it.GetItemId(), it.GetTitle())
		}
	}

	rows := []float32{0.2, 1, 2, 0, 0, 0, 0, 1}
	p, err := r.infer.Predict(context.Background(), &rankingv1.PredictRequest{InputData: rows})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if want := model.Score(rows[i*4 : i*4+4]); math.Abs(float64(p.GetScores()[i])-want) > 1e-5 {
			t.Errorf("Predict row %d = %v, want %v", i, p.GetScores()[i], want)
		}
	}
	if p.GetProvider() != "cpu" || p.GetModelVersion() != "v1" {
		t.Errorf("Predict = %v, want provider cpu, version v1", p)
	}
	if _, err := r.infer.Predict(context.Background(), &rankingv1.PredictRequest{InputData: rows[:5]}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("Predict(5 floats, width 4) = %v, want InvalidArgument", err)
	}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		in := slices.Clone(rows)
		in[6] = bad
		if _, err := r.infer.Predict(context.Background(), &rankingv1.PredictRequest{InputData: in}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "input_data[6]") {
			t.Errorf("Predict with %v at index 6 = %v, want InvalidArgument naming input_data[6]", bad, err)
		}
	}
	_, err = r.infer.Predict(context.Background(), &rankingv1.PredictRequest{InputData: rows, ModelVersion: "v9"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "v1") {
		t.Errorf("Predict(v9) = %v, want NotFound naming v1", err)
	}
}

func TestRecommend(t *testing.T) {
	r := start(t, experiment.Default())
	publish(t, r.root, "v1", model)
	r.reg.Scan()
	resp, err := r.client.Recommend(context.Background(), &rankingv1.RecommendRequest{UserId: "u1", Limit: 3, MaxPerCategory: 1, ExcludeItemIds: []string{"i0"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, it := range resp.GetItems() {
		if it.GetItemId() == "i0" || it.GetItemId() == "i3" {
			t.Errorf("recommended %s: excluded or recently clicked", it.GetItemId())
		}
		if c := it.GetCategories()[0]; seen[c] {
			t.Errorf("two items of %s with max_per_category 1", c)
		} else {
			seen[c] = true
		}
	}
	if len(resp.GetItems()) != 2 { // i1 Comedy, i2 Drama; i4 is Comedy too
		t.Errorf("Recommend = %v, want i1 and i2", resp.GetItems())
	}
}

func TestDegradedAnswers(t *testing.T) {
	r := start(t, experiment.Default())
	ctx := context.Background()
	// No model yet: trending order, flagged.
	resp, err := r.client.Rank(ctx, &rankingv1.RankRequest{UserId: "u1", CandidateIds: []string{"i3", "i0"}})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetModelFallback() || resp.GetItems()[0].GetItemId() != "i0" {
		t.Errorf("Rank without a model = %v, want trending order (i0 first), flagged", resp)
	}
	// Feature services down: defaults, flagged, still an answer.
	publish(t, r.root, "v1", model)
	r.reg.Scan()
	r.fake.down.Store(true)
	resp, err = r.client.Rank(ctx, &rankingv1.RankRequest{UserId: "u1", CandidateIds: testCandidates})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.GetFeaturesDegraded() || resp.GetModelFallback() || len(resp.GetItems()) != 5 {
		t.Errorf("Rank with features down = %v, want 5 items, features_degraded", resp)
	}
}

func TestArmsAndOverrides(t *testing.T) {
	exp := &experiment.Config{ID: "exp", Salt: "s", Arms: []experiment.Arm{{Name: "control", ModelVersion: "v1", Weight: 1}, {Name: "treatment", ModelVersion: "v2", Weight: 1}}}
	r := start(t, exp)
	publish(t, r.root, "v1", model)
	publish(t, r.root, "v2", modeltest.Logistic{W: []float32{-1, -1, -1, -1}, B: 0})
	r.reg.Scan()
	ctx := context.Background()
	arms := map[string]string{}
	for i := range 40 {
		u := fmt.Sprintf("user-%d", i)
		for range 2 {
			resp, err := r.client.Rank(ctx, &rankingv1.RankRequest{UserId: u, CandidateIds: testCandidates})
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"control": "v1", "treatment": "v2"}[resp.GetArm()]
			if resp.GetModelVersion() != want {
				t.Errorf("%s in arm %s scored by %s, want %s", u, resp.GetArm(), resp.GetModelVersion(), want)
			}
			if prev, ok := arms[u]; ok && prev != resp.GetArm() {
				t.Errorf("%s moved from %s to %s", u, prev, resp.GetArm())
			}
			arms[u] = resp.GetArm()
		}
	}
	hdr := metadata.AppendToOutgoingContext(ctx, "x-recsys-arm", "treatment")
	for i := range 10 {
		resp, err := r.client.Rank(hdr, &rankingv1.RankRequest{UserId: fmt.Sprintf("user-%d", i), CandidateIds: testCandidates})
		if err != nil || resp.GetArm() != "treatment" || resp.GetModelVersion() != "v2" {
			t.Errorf("with x-recsys-arm: treatment: %v, %v", resp, err)
		}
	}
	resp, err := r.client.Rank(metadata.AppendToOutgoingContext(ctx, "x-model-version", "v1"), &rankingv1.RankRequest{UserId: "user-1", CandidateIds: testCandidates})
	if err != nil || resp.GetModelVersion() != "v1" {
		t.Errorf("with x-model-version: v1: %v, %v", resp, err)
	}
	if _, err := r.client.Rank(metadata.AppendToOutgoingContext(ctx, "x-recsys-arm", "nope"), &rankingv1.RankRequest{UserId: "u", CandidateIds: testCandidates}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("unknown arm header = %v, want InvalidArgument", err)
	}
	lm, _ := r.models.ListModels(ctx, &rankingv1.ListModelsRequest{})
	for _, m := range lm.GetModels() {
		if m.GetState() != rankingv1.ModelState_MODEL_STATE_READY || len(m.GetArms()) != 1 {
			t.Errorf("ListModels: %s = %v / arms %v, want both ready (pinned by an arm)", m.GetVersion(), m.GetState(), m.GetArms())
		}
	}
}

// TestHotReloadUnderLoad ranks continuously while v2 and then a corrupt v3
// are published: not one call fails, traffic moves to v2, v3 is reported
// failed and v2 keeps serving.
func TestHotReloadUnderLoad(t *testing.T) {
	r := start(t, experiment.Default())
	publish(t, r.root, "v1", model)
	r.reg.Scan()
	var calls, failures atomic.Int64
	versions := sync.Map{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := r.client.Rank(context.Background(), &rankingv1.RankRequest{UserId: "u1", CandidateIds: testCandidates})
				calls.Add(1)
				if err != nil || resp.GetModelFallback() {
					failures.Add(1)
					continue
				}
				versions.Store(resp.GetModelVersion(), true)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	publish(t, r.root, "v2", modeltest.Logistic{W: []float32{1, 1, 1, 1}, B: 0})
	r.reg.Scan()
	time.Sleep(100 * time.Millisecond)
	os.MkdirAll(filepath.Join(r.root, "ctr", "v3"), 0o755)
	os.WriteFile(filepath.Join(r.root, "ctr", "v3", "model.onnx"), []byte("garbage"), 0o644)
	os.WriteFile(filepath.Join(r.root, "ctr", "v3", "metadata.json"), model.Metadata("ctr", "v3", time.Now(), features), 0o644)
	r.reg.Scan()
	time.Sleep(100 * time.Millisecond)
	stop()
	wg.Wait()

	if failures.Load() != 0 {
		t.Errorf("%d of %d calls failed during the reloads", failures.Load(), calls.Load())
	}
	if _, ok := versions.Load("v2"); !ok {
		t.Error("traffic never reached v2")
	}
	resp, err := r.client.Rank(context.Background(), &rankingv1.RankRequest{UserId: "u1", CandidateIds: testCandidates})
	if err != nil || resp.GetModelVersion() != "v2" {
		t.Errorf("after a corrupt v3: %v, %v; want v2 serving", resp, err)
	}
	lm, _ := r.models.ListModels(context.Background(), &rankingv1.ListModelsRequest{})
	states := map[string]rankingv1.ModelState{}
	for _, m := range lm.GetModels() {
		states[m.GetVersion()] = m.GetState()
	}
	if states["v3"] != rankingv1.ModelState_MODEL_STATE_FAILED || states["v2"] != rankingv1.ModelState_MODEL_STATE_READY {
		t.Errorf("ListModels states = %v, want v2 ready and v3 failed", states)
	}
	t.Logf("%d calls, none failed", calls.Load())
}
