package local

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/modelrt/modeltest"
	"github.com/recsys/recsys/libs/retrieval"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

// TestClickPullsNeighboursIntoTheNextRecommendation runs the platform with
// a model version whose retrieval index gives item "x" three neighbours,
// clicks x through the feedback service (Kafka, featurecompute, Redis),
// and expects the next Recommend to lead with those neighbours, attributed
// to item-to-item retrieval, and never to offer x again. A version
// without a retrieval index still serves, from trending, flagged.
func TestClickPullsNeighboursIntoTheNextRecommendation(t *testing.T) {
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}
	models := t.TempDir()
	items := []string{"x", "n1", "n2", "n3"}
	for i := range 30 {
		items = append(items, fmt.Sprintf("other-%d", i))
	}
	index := &retrieval.Index{Items: items, Neighbors: make([][]retrieval.Neighbor, len(items)), Trend: make([]float32, len(items))}
	index.Neighbors[0] = []retrieval.Neighbor{{Item: 1, Weight: 3}, {Item: 2, Weight: 2}, {Item: 3, Weight: 1}}
	for i := range index.Trend {
		index.Trend[i] = float32(len(items) - i) // x and its neighbours trend most: a cold user sees them
	}
	// The ranker: the item-to-item signal, nothing else.
	l := modeltest.Logistic{W: []float32{1}}
	meta := l.Metadata("ctr", "with-index", time.Now(), []map[string]any{{"name": "i2i", "source": "retrieval.i2i"}})
	if err := modeltest.Publish(models, "ctr", "with-index", l.ONNX(), meta); err != nil {
		t.Fatal(err)
	}
	if err := index.Write(filepath.Join(models, "ctr", "with-index", retrieval.FileName)); err != nil {
		t.Fatal(err)
	}
	if err := modeltest.Publish(models, "ctr", "a-bare", l.ONNX(), l.Metadata("ctr", "a-bare", time.Now().Add(-time.Hour),
		[]map[string]any{{"name": "i2i", "source": "retrieval.i2i"}})); err != nil {
		t.Fatal(err)
	}
	svc := startPlatform(t, "-ranking.model-root="+models)
	dial := func(name string) *grpc.ClientConn {
		addr := fmt.Sprintf("127.0.0.1:%d", svc[name].grpc)
		testenv.WaitForPort(t, addr, 10*time.Second)
		conn, err := serving.Dial(addr, serving.ClientConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	ranking := rankingv1.NewRankingServiceClient(dial("ranking"))
	feedback := feedbackv1.NewFeedbackServiceClient(dial("feedback"))
	itemsClient := itemfeaturesv1.NewItemFeatureServiceClient(dial("itemfeatures"))
	ctx := context.Background()
	var attrs []*itemfeaturesv1.ItemAttributes
	for _, id := range items {
		attrs = append(attrs, &itemfeaturesv1.ItemAttributes{ItemId: id, Title: id, Categories: []string{"c"}})
	}
	if _, err := itemsClient.UpsertItems(ctx, &itemfeaturesv1.UpsertItemsRequest{Items: attrs}); err != nil {
		t.Fatal(err)
	}

	recommend := func(version string) *rankingv1.RecommendResponse {
		t.Helper()
		var resp *rankingv1.RecommendResponse
		var err error
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			resp, err = ranking.Recommend(ctx, &rankingv1.RecommendRequest{UserId: "u1", Limit: 5, ModelVersion: version})
			if err == nil {
				return resp
			}
		}
		t.Fatalf("Recommend(%s) = %v", version, err)
		return nil
	}
	ids := func(r *rankingv1.RecommendResponse) []string {
		var out []string
		for _, it := range r.GetItems() {
			out = append(out, it.GetItemId())
		}
		return out
	}

	cold := recommend("with-index")
	if cold.GetRetrievalFallback() || len(cold.GetItems()) == 0 || cold.GetItems()[0].GetSource() != "trending" {
		t.Fatalf("cold user: %v (fallback %v), want trending candidates from the index", cold.GetItems(), cold.GetRetrievalFallback())
	}

	click := func(id, user, item string) *feedbackv1.Event {
		return &feedbackv1.Event{EventId: id, Type: feedbackv1.EventType_EVENT_TYPE_CLICK, UserId: user, ItemId: item, EventTime: timestamppb.Now()}
	}
	// u2's clicks make other-1 trend, for the trending-only version below.
	if _, err := feedback.RecordEvents(ctx, &feedbackv1.RecordEventsRequest{Events: []*feedbackv1.Event{
		click("click-x", "u1", "x"), click("u2-1", "u2", "other-1"), click("u2-x", "u2", "x"),
	}}); err != nil {
		t.Fatal(err)
	}
	var after *rankingv1.RecommendResponse
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		after = recommend("with-index")
		if got := ids(after); len(got) >= 3 && slices.Equal(got[:3], []string{"n1", "n2", "n3"}) {
			break
		}
	}
	got := ids(after)
	if len(got) < 3 || !slices.Equal(got[:3], []string{"n1", "n2", "n3"}) {
		t.Fatalf("after clicking x, Recommend = %v, want x's neighbours n1, n2, n3 first", got)
	}
	for _, it := range after.GetItems()[:3] {
		if it.GetSource() != "item2item" {
			t.Errorf("%s came from %q, want item2item", it.GetItemId(), it.GetSource())
		}
	}
	if slices.Contains(got, "x") {
		t.Errorf("Recommend = %v offers x, which the user consumed", got)
	}

	bare := recommend("a-bare")
	if !bare.GetRetrievalFallback() || bare.GetModelVersion() != "a-bare" {
		t.Errorf("a version without a retrieval index: fallback %v, version %q; want it served, flagged", bare.GetRetrievalFallback(), bare.GetModelVersion())
	}
	if !slices.Contains(ids(bare), "other-1") || slices.Contains(ids(bare), "x") {
		t.Errorf("trending-only Recommend = %v, want the trending other-1 and never x, which the user consumed", ids(bare))
	}
}
