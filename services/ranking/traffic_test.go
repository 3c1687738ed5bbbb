package ranking

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/modelrt/modeltest"
	"github.com/recsys/recsys/libs/retrieval"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

// trafficRig is a ranking server as Run wires it (the trafficRanker in
// front of the Ranker, a served-ranking log that nothing drains), with a
// live client and a client whose authority is what Envoy gives a mirrored
// copy.
type trafficRig struct {
	live, shadow rankingv1.RankingServiceClient
	served       *ServedLog
	traffic      *trafficRanker
}

func startTraffic(t *testing.T, exp *experiment.Config, shadowArm string) *trafficRig {
	t.Helper()
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}
	logger := testenv.DiscardLogger()
	root := t.TempDir()
	publish(t, root, "v1", model)
	// The candidate scores every item differently from v1.
	publish(t, root, "v2", modeltest.Logistic{W: []float32{-1, 0.1, -0.5, 2}, B: 0.5})
	reg := modelrt.NewRegistry(modelrt.RegistryConfig{Root: root, Name: "ctr", Warmup: []int{1},
		Session: modelrt.SessionOptions{Provider: modelrt.CPU, IntraOpThreads: 1}, Interval: time.Hour}, exp.Versions, logger, prometheus.NewRegistry())
	reg.Scan()
	// Not run: what is offered stays in the buffer, where the test counts it.
	served := NewServedLog(&kafka.Writer{}, 100, logger, prometheus.NewRegistry())
	f := world()
	r := NewRanker(f, f, reg, exp, served, Options{FeatureTimeout: 200 * time.Millisecond, Quotas: retrieval.DefaultQuotas()}, logger, prometheus.NewRegistry())
	tr := newTrafficRanker(r, shadowArm, prometheus.NewRegistry())
	srv := testenv.Serve(t, func(s *serving.Server) { rankingv1.RegisterRankingServiceServer(s.GRPC(), tr) })
	// Its own connections, not srv.Conn: the rig's point is the authority
	// each one sends.
	dial := func(authority string) rankingv1.RankingServiceClient {
		conn, err := grpc.NewClient(srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority(authority))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return rankingv1.NewRankingServiceClient(conn)
	}
	return &trafficRig{
		live: dial("ranking.recsys.svc.cluster.local:9093"),
		// Envoy's request mirror appends -shadow to the host.
		shadow:  dial("ranking.recsys.svc.cluster.local-shadow:9093"),
		served:  served,
		traffic: tr,
	}
}

// canary is the experiment of a model canary: control on v1, the
// candidate v2 in the treatment arm.
func canary() *experiment.Config {
	return &experiment.Config{ID: "canary-v2", Salt: "s", Arms: []experiment.Arm{
		{Name: "control", ModelVersion: "v1", Weight: 95},
		{Name: "treatment", ModelVersion: "v2", Weight: 5},
	}}
}

// userIn returns a user id the experiment assigns to arm.
func userIn(t *testing.T, exp *experiment.Config, arm string) string {
	t.Helper()
	for i := range 10000 {
		if u := fmt.Sprintf("user-%d", i); exp.Assign(u).Name == arm {
			return u
		}
	}
	t.Fatalf("no user in arm %s", arm)
	return ""
}

// TestMirroredRequestsScoreTheCandidate: a live request is scored by the
// model of the user's sticky arm and logged; its mirrored copy (authority
// ending in -shadow) is scored by the shadow arm's model, the candidate,
// whatever arm or version the request names, and is never logged. Both are
// counted apart, so the candidate can be compared with live traffic.
func TestMirroredRequestsScoreTheCandidate(t *testing.T) {
	exp := canary()
	r := startTraffic(t, exp, "treatment")
	ctx := context.Background()
	user := userIn(t, exp, "control")
	rank := &rankingv1.RankRequest{UserId: user, CandidateIds: testCandidates}

	live, err := r.live.Rank(ctx, rank)
	if err != nil {
		t.Fatal(err)
	}
	if live.GetArm() != "control" || live.GetModelVersion() != "v1" {
		t.Errorf("live Rank(%s) = arm %q version %q, want control v1 (the user's sticky arm)", user, live.GetArm(), live.GetModelVersion())
	}
	if got := len(r.served.ch); got != 1 {
		t.Errorf("after one live Rank, %d served rankings logged, want 1", got)
	}

	// A mirrored copy of the same request, and one that names the control
	// arm and pins v1 every way it can: both are scored by v2 and neither
	// is logged.
	pinned := metadata.AppendToOutgoingContext(ctx, "x-recsys-arm", "control", "x-model-version", "v1")
	for name, call := range map[string]func() (answer, error){
		"Rank": func() (answer, error) { return r.shadow.Rank(ctx, rank) },
		"Rank pinned to v1": func() (answer, error) {
			return r.shadow.Rank(pinned, &rankingv1.RankRequest{UserId: user, CandidateIds: testCandidates, ModelVersion: "v1"})
		},
		"Recommend": func() (answer, error) {
			return r.shadow.Recommend(ctx, &rankingv1.RecommendRequest{UserId: user, Limit: 3})
		},
		"Recommend pinned to v1": func() (answer, error) {
			return r.shadow.Recommend(pinned, &rankingv1.RecommendRequest{UserId: user, Limit: 3, ModelVersion: "v1"})
		},
	} {
		resp, err := call()
		if err != nil {
			t.Errorf("mirrored %s: %v", name, err)
			continue
		}
		if resp.GetModelVersion() != "v2" {
			t.Errorf("mirrored %s: scored by %q, want the candidate v2", name, resp.GetModelVersion())
		}
	}
	shadow, err := r.shadow.Rank(ctx, rank)
	if err != nil {
		t.Fatal(err)
	}
	if shadow.GetItems()[0].GetScore() == live.GetItems()[0].GetScore() && shadow.GetItems()[0].GetItemId() == live.GetItems()[0].GetItemId() {
		t.Errorf("mirrored Rank scored like the live one (%v): not by the candidate", shadow.GetItems()[0])
	}
	if got := len(r.served.ch); got != 1 {
		t.Errorf("after mirrored requests, %d served rankings logged, want still 1: a shadow is never logged", got)
	}

	for _, c := range []struct {
		traffic, arm, outcome string
		want                  float64
	}{
		{"live", "control", "ok", 1},
		{"shadow", "treatment", "ok", 5},
		{"shadow", "control", "ok", 0},
	} {
		if got := testutil.ToFloat64(r.traffic.requests.WithLabelValues(c.traffic, c.arm, c.outcome)); got != c.want {
			t.Errorf("recsys_rank_requests_total{traffic=%q,arm=%q,outcome=%q} = %v, want %v", c.traffic, c.arm, c.outcome, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(r.traffic.scores); n != 2 {
		t.Errorf("recsys_rank_score has %d series, want 2 (live control, shadow treatment)", n)
	}
}

// TestShadowWithoutTheShadowArm: when the experiment has no arm named by
// -shadow-arm (a single-arm experiment, no candidate), a mirrored copy is
// scored like the live request, and still never logged.
func TestShadowWithoutTheShadowArm(t *testing.T) {
	exp := &experiment.Config{ID: "one", Salt: "s", Arms: []experiment.Arm{{Name: "control", ModelVersion: "v1", Weight: 1}}}
	r := startTraffic(t, exp, "treatment")
	resp, err := r.shadow.Rank(context.Background(), &rankingv1.RankRequest{UserId: "u1", CandidateIds: testCandidates})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetArm() != "control" || resp.GetModelVersion() != "v1" {
		t.Errorf("mirrored Rank = arm %q version %q, want control v1", resp.GetArm(), resp.GetModelVersion())
	}
	if got := len(r.served.ch); got != 0 {
		t.Errorf("%d served rankings logged for a mirrored request, want 0", got)
	}
	if got := testutil.ToFloat64(r.traffic.requests.WithLabelValues("shadow", "control", "ok")); got != 1 {
		t.Errorf(`recsys_rank_requests_total{traffic="shadow",arm="control",outcome="ok"} = %v, want 1`, got)
	}
}

// TestTrafficOutcomes: an arm whose pinned model is not loaded is served
// by another and counted as unpinned; a header naming no arm is rejected
// and counted under arm "invalid", not under its own value.
func TestTrafficOutcomes(t *testing.T) {
	exp := &experiment.Config{ID: "e", Salt: "s", Arms: []experiment.Arm{{Name: "control", ModelVersion: "v1", Weight: 1}, {Name: "treatment", ModelVersion: "v9", Weight: 1}}}
	r := startTraffic(t, exp, "treatment")
	ctx := context.Background()
	if _, err := r.live.Rank(metadata.AppendToOutgoingContext(ctx, "x-recsys-arm", "treatment"), &rankingv1.RankRequest{UserId: "u1", CandidateIds: testCandidates}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.live.Rank(metadata.AppendToOutgoingContext(ctx, "x-recsys-arm", "someone-else"), &rankingv1.RankRequest{UserId: "u1", CandidateIds: testCandidates}); err == nil {
		t.Error("Rank with x-recsys-arm naming no arm: nil error, want InvalidArgument")
	}
	for _, c := range []struct{ arm, outcome string }{{"treatment", "unpinned"}, {"invalid", "rejected"}} {
		if got := testutil.ToFloat64(r.traffic.requests.WithLabelValues("live", c.arm, c.outcome)); got != 1 {
			t.Errorf("recsys_rank_requests_total{traffic=\"live\",arm=%q,outcome=%q} = %v, want 1", c.arm, c.outcome, got)
		}
	}
}
