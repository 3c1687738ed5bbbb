package feedback

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/embedded"
	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

type env struct {
	client  feedbackv1.FeedbackServiceClient
	store   *featurestore.Store
	brokers []string
	topic   string
	http    string // REST base URL
}

// start serves the feedback service over gRPC, writing to topic on brokers,
// with the experiment file expFile ("" for none).
func start(t *testing.T, brokers []string, topic, expFile string) *env {
	t.Helper()
	r := testenv.NewRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	store, _ := featurestore.New(rdb, r.Prefix)
	w := eventstream.NewWriter(eventstream.Plain(brokers...), topic)
	t.Cleanup(func() { w.Close() })
	srv := testenv.Serve(t, func(srv *serving.Server) {
		feedbackv1.RegisterFeedbackServiceServer(srv.GRPC(), NewServer(w, store, expFile, 5*time.Second, srv.Metrics()))
		if err := srv.Publish(feedbackv1.File_recsys_feedback_v1_feedback_proto, feedbackv1.RegisterFeedbackServiceHandler); err != nil {
			t.Fatal(err)
		}
	})
	return &env{client: feedbackv1.NewFeedbackServiceClient(srv.Conn), store: store, brokers: brokers, topic: topic, http: srv.URL("")}
}

// drain applies every event on the topic to the store, as the stream
// processor does, until no message arrives for two seconds, and returns how
// many events the experiment then counts.
func (e *env) drain(t *testing.T) int64 {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.brokers, Topic: e.topic, GroupID: e.topic + "-g", MaxWait: 50 * time.Millisecond})
	defer r.Close()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			break
		}
		ev, err := eventstream.Decode(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.ApplyEvents(context.Background(), []featurestore.Event{eventstream.ToStore(ev)}); err != nil {
			t.Fatal(err)
		}
	}
	arms, err := e.store.Experiment(context.Background(), "exp")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, a := range arms {
		n += a.Impressions + a.Clicks
	}
	return n
}

func events(prefix string, n int) []*feedbackv1.Event {
	evs := make([]*feedbackv1.Event, n)
	for i := range evs {
		arm := []string{"control", "treatment"}[i%2]
		typ := feedbackv1.EventType_EVENT_TYPE_IMPRESSION
		if i%3 == 0 {
			typ = feedbackv1.EventType_EVENT_TYPE_CLICK
		}
		evs[i] = &feedbackv1.Event{EventId: fmt.Sprintf("%s-%d", prefix, i), Type: typ, UserId: fmt.Sprintf("u%d", i%7), ItemId: "i1",
			ExperimentId: "exp", Arm: arm, ModelVersion: "v-" + arm}
	}
	return evs
}

func TestRecordEventsAndReport(t *testing.T) {
	k := testenv.NewKafka(t)
	e := start(t, k.Brokers, k.Topic(t, "feedback", 3), "")
	ctx := context.Background()

	resp, err := e.client.RecordEvents(ctx, &feedbackv1.RecordEventsRequest{Events: events("a", 30)})
	if err != nil || resp.GetAcceptedCount() != 30 {
		t.Fatalf("RecordEvents = %v, %v; want 30 accepted", resp, err)
	}
	if n := e.drain(t); n != 30 {
		t.Fatalf("%d events counted, want 30", n)
	}
	report, err := e.client.GetExperimentReport(ctx, &feedbackv1.GetExperimentReportRequest{ExperimentId: "exp"})
	if err != nil {
		t.Fatal(err)
	}
	if report.GetControlArm() != "control" || len(report.GetArms()) != 2 ||
		report.GetArms()[0].GetImpressions()+report.GetArms()[1].GetImpressions() != 20 ||
		report.GetArms()[0].GetClicks()+report.GetArms()[1].GetClicks() != 10 {
		t.Errorf("report = %v, want control and treatment with 20 impressions and 10 clicks in all", report)
	}
	if _, err := e.client.GetExperimentReport(ctx, &feedbackv1.GetExperimentReportRequest{ExperimentId: "none"}); status.Code(err) != codes.NotFound {
		t.Errorf("report of an unknown experiment = %v, want NotFound", err)
	}

	// The message on the topic: keyed by user, trace context in headers.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.brokers, Topic: e.topic, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m, err := r.ReadMessage(rctx)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := eventstream.Decode(m)
	if err != nil || string(m.Key) != ev.GetUserId() || ev.GetEventTime() == nil {
		t.Errorf("message key %q, event %v, %v: want keyed by user id with the arrival time filled in", m.Key, ev, err)
	}
}

func TestRecordEventsRejectsTheWholeBatch(t *testing.T) {
	k := testenv.NewKafka(t)
	e := start(t, k.Brokers, k.Topic(t, "feedback", 1), "")
	old := time.Now().Add(-30 * 24 * time.Hour)
	for _, tc := range []struct {
		name    string
		mutate  func(*feedbackv1.Event)
		mention string
	}{
		{"no event id", func(e *feedbackv1.Event) { e.EventId = "" }, `events[1].event_id ""`},
		{"unknown type", func(e *feedbackv1.Event) { e.Type = 0 }, "events[1].type EVENT_TYPE_UNSPECIFIED"},
		{"no user", func(e *feedbackv1.Event) { e.UserId = "" }, "user_id"},
		{"far future", func(e *feedbackv1.Event) { e.EventTime = timestamppb.New(time.Now().Add(time.Hour)) }, "event_time"},
		{"too old", func(e *feedbackv1.Event) { e.EventTime = timestamppb.New(old) }, "older than"},
		{"arm missing", func(e *feedbackv1.Event) { e.Arm = "" }, "arm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := events("b", 3)
			tc.mutate(evs[1])
			_, err := e.client.RecordEvents(context.Background(), &feedbackv1.RecordEventsRequest{Events: evs})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("RecordEvents = %v, want InvalidArgument mentioning %q", err, tc.mention)
			}
		})
	}
	// Nothing of the refused batches reached the topic.
	conn, err := kafka.DialLeader(context.Background(), "tcp", e.brokers[0], e.topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if last, err := conn.ReadLastOffset(); err != nil || last != 0 {
		t.Errorf("topic end offset = %d, %v; want 0 (nothing written)", last, err)
	}
}

// TestKafkaDownThenRetry stops the (embedded) broker: RecordEvents answers
// Unavailable within the caller's deadline; after the broker is back, the
// client retries the same events (twice) and each is counted once.
func TestKafkaDownThenRetry(t *testing.T) {
	port := testenv.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	_, stop, err := embedded.StartKafka(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := eventstream.EnsureTopics(context.Background(), eventstream.Plain(addr), 3, "feedback"); err != nil {
		t.Fatal(err)
	}
	e := start(t, []string{addr}, "feedback", "")
	stop()

	evs := events("c", 12)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	began := time.Now()
	_, err = e.client.RecordEvents(ctx, &feedbackv1.RecordEventsRequest{Events: evs})
	cancel()
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "Kafka") {
		t.Errorf("RecordEvents with Kafka down = %v, want Unavailable naming Kafka", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("RecordEvents with Kafka down took %s, past the 2s deadline", took)
	}

	_, stop, err = embedded.StartKafka(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := eventstream.EnsureTopics(context.Background(), eventstream.Plain(addr), 3, "feedback"); err != nil {
		t.Fatal(err)
	}
	for attempt := range 2 {
		var err error
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if _, err = e.client.RecordEvents(context.Background(), &feedbackv1.RecordEventsRequest{Events: evs}); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("retry %d after recovery: %v", attempt, err)
		}
	}
	if n := e.drain(t); n != 12 {
		t.Errorf("after two retries %d events are counted, want exactly 12", n)
	}
}

// TestReportFromExperimentFile: the report takes the configured weights
// from the experiment file (or the request), checks the split against
// them, and reports guardrails from the serving flags on impressions.
func TestReportFromExperimentFile(t *testing.T) {
	k := testenv.NewKafka(t)
	expFile := filepath.Join(t.TempDir(), "experiment.json")
	cfg := &experiment.Config{ID: "exp", Salt: "s", Arms: []experiment.Arm{{Name: "control", ModelVersion: "v1", Weight: 50}, {Name: "treatment", ModelVersion: "v2", Weight: 50}}}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(expFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e := start(t, k.Brokers, k.Topic(t, "feedback", 1), expFile)
	ctx := context.Background()
	var evs []featurestore.Event
	now := time.Now()
	for u := range 300 {
		user := fmt.Sprintf("user-%d", u)
		arm := cfg.Assign(user)
		for i := range 10 {
			ev := featurestore.Event{ID: fmt.Sprintf("%s-%d", user, i), Kind: featurestore.Impression, UserID: user, ItemID: fmt.Sprintf("i%d", i), Time: now,
				ExperimentID: "exp", Arm: arm.Name, ModelVersion: arm.ModelVersion, ServerLatency: 5 * time.Millisecond, FeaturesDegraded: i == 0 && u%10 == 0}
			evs = append(evs, ev)
			if (u+i)%7 == 0 {
				ev.ID, ev.Kind = ev.ID+"-c", featurestore.Click
				evs = append(evs, ev)
			}
		}
	}
	if _, err := e.store.ApplyEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	r, err := e.client.GetExperimentReport(ctx, &feedbackv1.GetExperimentReportRequest{ExperimentId: "exp"})
	if err != nil {
		t.Fatal(err)
	}
	var users, flagged int64
	for _, a := range r.GetArms() {
		users += a.GetUniqueUsers()
		flagged += a.GetGuardrails().GetImpressions()
		if a.GetExpectedUserShare() != 0.5 || a.GetGuardrails().GetLatencyP99().AsDuration() != featurestore.LatencyBucketUpper(featurestore.LatencyBucket(5*time.Millisecond)) {
			t.Errorf("arm %s: expected share %v, guardrails %v; want 0.5 and p99 in 5 ms's bucket", a.GetArm(), a.GetExpectedUserShare(), a.GetGuardrails())
		}
	}
	if !r.GetSrmChecked() || r.GetSrm() || users != 300 || flagged != 3000 || r.GetGuardrailBreach() {
		t.Errorf("report: srm checked %v, srm %v (p %v), %d users, %d flagged impressions, breach %v; want checked, no mismatch, 300, 3000, none",
			r.GetSrmChecked(), r.GetSrm(), r.GetSrmPValue(), users, flagged, r.GetGuardrailBreach())
	}
	// Weights in the request win; these do not match the split.
	r, err = e.client.GetExperimentReport(ctx, &feedbackv1.GetExperimentReportRequest{ExperimentId: "exp", ArmWeights: map[string]float64{"control": 90, "treatment": 10}})
	if err != nil || !r.GetSrm() || !strings.Contains(strings.Join(r.GetWarnings(), " "), "Do not trust") {
		t.Errorf("report at 90/10 = srm %v, warnings %q, %v; want a mismatch and a warning", r.GetSrm(), r.GetWarnings(), err)
	}
	// The same over REST, the weights as query parameters.
	resp, err := http.Get(e.http + "/v1/experiments/exp/report?armWeights[control]=90&armWeights[treatment]=10")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rest := &feedbackv1.GetExperimentReportResponse{}
	if err := protojson.Unmarshal(body, rest); err != nil || !rest.GetSrm() {
		t.Errorf("REST report at 90/10 = %s (%v); want a mismatch", body, err)
	}
	for _, w := range []map[string]float64{{"control": -1}, {"control": 0, "treatment": 0}, {"control": math.Inf(1)}} {
		if _, err := e.client.GetExperimentReport(ctx, &feedbackv1.GetExperimentReportRequest{ExperimentId: "exp", ArmWeights: w}); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "arm_weights") {
			t.Errorf("report with weights %v = %v, want InvalidArgument naming arm_weights", w, err)
		}
	}
	// The file describes another experiment now: weights unknown.
	cfg.ID = "next"
	b, _ = json.Marshal(cfg)
	if err := os.WriteFile(expFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err = e.client.GetExperimentReport(ctx, &feedbackv1.GetExperimentReportRequest{ExperimentId: "exp"})
	if err != nil || r.GetSrmChecked() {
		t.Errorf("report of an experiment the file no longer describes: srm checked %v, %v; want unchecked", r.GetSrmChecked(), err)
	}
}

func TestArmLabelsAreBounded(t *testing.T) {
	s := &Server{armLabels: map[[2]string]bool{}}
	for i := range maxArmLabels + 5 {
		exp, arm := s.armLabel("exp", fmt.Sprintf("arm-%d", i))
		if i < maxArmLabels && arm != fmt.Sprintf("arm-%d", i) {
			t.Fatalf("arm %d labelled %s/%s before the bound", i, exp, arm)
		}
		if i >= maxArmLabels && (exp != "other" || arm != "other") {
			t.Fatalf("arm %d labelled %s/%s past the bound, want other/other", i, exp, arm)
		}
	}
	if exp, arm := s.armLabel("exp", "arm-3"); exp != "exp" || arm != "arm-3" {
		t.Errorf("a known arm past the bound = %s/%s, want itself", exp, arm)
	}
}
