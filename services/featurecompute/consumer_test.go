package featurecompute

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/testenv"
)

// harness is one test's topic, Redis namespace and consumers.
type harness struct {
	t       testing.TB
	brokers []string
	topic   string
	dlq     string
	group   string
	rdb     *redis.Client
	prefix  string
	store   *featurestore.Store
	metrics *Metrics
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	k := testenv.NewKafka(t)
	r := testenv.NewRedis(t)
	h := &harness{t: t, brokers: k.Brokers, topic: k.Topic(t, "feedback", 3), dlq: k.Topic(t, "dlq", 1), rdb: redis.NewClient(&redis.Options{Addr: r.Addr}), prefix: r.Prefix}
	h.group = h.topic + "-group"
	t.Cleanup(func() { h.rdb.Close() })
	var err error
	if h.store, err = featurestore.New(h.rdb, h.prefix); err != nil {
		t.Fatal(err)
	}
	h.metrics = NewMetrics(prometheus.NewRegistry())
	return h
}

// consumer is one running consumer; stop cancels it abruptly (no commit of
// what it holds) and waits for it.
type consumer struct {
	cancel  context.CancelFunc
	done    chan error
	batches atomic.Int64 // batches applied
}

func (h *harness) start() *consumer { return h.startCrashing(0) }

// startCrashing starts a consumer that, when crashAfter > 0, dies after
// that many batches right after writing to Redis and before committing.
func (h *harness) startCrashing(crashAfter int) *consumer {
	reader := NewReader(eventstream.Plain(h.brokers...), h.topic, h.group)
	dlq := eventstream.NewWriter(eventstream.Plain(h.brokers...), h.dlq)
	c := NewConsumer(reader, dlq, h.store, h.metrics, testenv.DiscardLogger(), Batching{Size: 500, Wait: 5 * time.Millisecond, InFlight: 3})
	ctx, cancel := context.WithCancel(context.Background())
	cs := &consumer{cancel: cancel, done: make(chan error, 1)}
	c.afterApply = func() {
		if n := cs.batches.Add(1); int(n) == crashAfter {
			cancel()
		}
	}
	go func() {
		err := c.Run(ctx)
		reader.Close()
		dlq.Close()
		cs.done <- err
	}()
	return cs
}

func (c *consumer) stop(t testing.TB) {
	c.cancel()
	if err := <-c.done; err != nil {
		t.Errorf("consumer: %v", err)
	}
}

// produce writes events straight to the topic.
func (h *harness) produce(msgs []kafka.Message) {
	h.t.Helper()
	w := eventstream.NewWriter(eventstream.Plain(h.brokers...), h.topic)
	defer w.Close()
	for i := 0; i < len(msgs); i += 5000 {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err := w.WriteMessages(ctx, msgs[i:min(i+5000, len(msgs))]...)
		cancel()
		if err != nil {
			h.t.Fatalf("produce: %v", err)
		}
	}
}

// burst makes n events of 200 users and 300 items in a two-arm experiment.
func burst(n int) ([]*feedbackv1.Event, map[string]int64) {
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	now := time.Now()
	want := map[string]int64{}
	evs := make([]*feedbackv1.Event, n)
	for i := range evs {
		typ := feedbackv1.EventType_EVENT_TYPE_IMPRESSION
		if rng.IntN(5) == 0 {
			typ = feedbackv1.EventType_EVENT_TYPE_CLICK
		}
		arm := []string{"control", "treatment"}[rng.IntN(2)]
		evs[i] = &feedbackv1.Event{
			EventId: fmt.Sprintf("ev-%d", i), Type: typ, UserId: fmt.Sprintf("u%d", rng.IntN(200)), ItemId: fmt.Sprintf("i%d", rng.IntN(300)),
			ExperimentId: "exp", Arm: arm, ModelVersion: "v-" + arm,
			EventTime: timestamppb.New(now.Add(-time.Duration(rng.Int64N(int64(time.Hour))))),
		}
		want[arm+"/"+typ.String()]++
	}
	return evs, want
}

func encodeAll(t testing.TB, evs []*feedbackv1.Event) []kafka.Message {
	msgs := make([]kafka.Message, len(evs))
	for i, e := range evs {
		m, err := eventstream.Encode(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = m
	}
	return msgs
}

func (h *harness) counts() map[string]int64 {
	arms, err := h.store.Experiment(context.Background(), "exp")
	if err != nil {
		h.t.Fatal(err)
	}
	got := map[string]int64{}
	for _, a := range arms {
		got[a.Arm+"/EVENT_TYPE_IMPRESSION"] = a.Impressions
		got[a.Arm+"/EVENT_TYPE_CLICK"] = a.Clicks
	}
	return got
}

func total(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

// waitFor polls until every event is counted.
func (h *harness) waitFor(want map[string]int64, timeout time.Duration) {
	h.t.Helper()
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if total(h.counts()) >= total(want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("after %s: counted %d of %d events", timeout, total(h.counts()), total(want))
}

// verify checks that the experiment counters are exact and that every
// user's and item's features equal those of the same events applied once,
// in order, into a fresh namespace.
func (h *harness) verify(evs []*feedbackv1.Event, want map[string]int64) {
	h.t.Helper()
	for k, v := range want {
		if got := h.counts()[k]; got != v {
			h.t.Errorf("experiment counter %s = %d, want exactly %d", k, got, v)
		}
	}
	now := time.Now()
	ref, _ := featurestore.New(h.rdb, h.prefix+"ref:", featurestore.WithClock(func() time.Time { return now }))
	got, _ := featurestore.New(h.rdb, h.prefix, featurestore.WithClock(func() time.Time { return now }))
	if err := got.Refresh(context.Background()); err != nil { // the active generation
		h.t.Fatal(err)
	}
	all := make([]featurestore.Event, len(evs))
	for i, e := range evs {
		all[i] = eventstream.ToStore(e)
	}
	for i := 0; i < len(all); i += 1000 {
		if _, err := ref.ApplyEvents(context.Background(), all[i:min(i+1000, len(all))]); err != nil {
			h.t.Fatal(err)
		}
	}
	ids := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d", prefix, i)
		}
		return out
	}
	ctx := context.Background()
	wantU, _ := ref.Users(ctx, ids("u", 200), nil)
	gotU, _ := got.Users(ctx, ids("u", 200), nil)
	wantI, _ := ref.Items(ctx, ids("i", 300), nil)
	gotI, _ := got.Items(ctx, ids("i", 300), nil)
	mismatches := 0
	for i, w := range append(wantU, wantI...) {
		g := append(gotU, gotI...)[i]
		for name, f := range w.GetFeatures() {
			a, b := f.GetNumber(), g.GetFeatures()[name].GetNumber()
			if math.Abs(a-b) > 1e-9*math.Max(1, math.Abs(a)) {
				if mismatches++; mismatches <= 5 {
					h.t.Errorf("%s.%s = %v, want %v (the events applied once)", w.GetEntityId(), name, b, a)
				}
			}
		}
	}
}

func size(t *testing.T) int {
	if testing.Short() {
		return 10_000
	}
	return 100_000
}

func TestExactlyOnceAcrossAbruptStops(t *testing.T) {
	h := newHarness(t)
	evs, want := burst(size(t))
	h.produce(encodeAll(t, evs))

	rng := rand.New(rand.NewPCG(1, 1))
	for stops := 0; total(h.counts()) < total(want); stops++ {
		if stops >= 8 {
			c := h.start()
			h.waitFor(want, 3*time.Minute)
			c.stop(t)
			break
		}
		if stops%2 == 1 {
			// Stopped at a random moment: mid-fetch, mid-apply or mid-commit.
			c := h.start()
			time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
			c.stop(t)
			continue
		}
		// Killed between the Redis write and the commit of a random batch.
		c := h.startCrashing(1 + rng.IntN(4))
		select {
		case err := <-c.done:
			if err != nil {
				t.Errorf("consumer: %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("the crashing consumer never crashed")
		}
	}
	h.verify(evs, want)
	if d := testutil.ToFloat64(h.metrics.duplicates); d == 0 {
		t.Error("no duplicate was skipped: the stops never caused a redelivery, so the test proved nothing")
	} else {
		t.Logf("%d redelivered events skipped", int(d))
	}
}

func TestExactlyOnceWhileScaling(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a 100k-event burst, long enough for the group to rebalance twice")
	}
	h := newHarness(t)
	evs, want := burst(100_000)
	h.produce(encodeAll(t, evs))

	first := h.start()
	progress := func(frac float64) {
		for total(h.counts()) < int64(frac*float64(total(want))) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	progress(0.2)
	more := []*consumer{h.start(), h.start()} // 1 → 3
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if more[0].batches.Load() > 0 && more[1].batches.Load() > 0 {
			break
		}
	}
	if more[0].batches.Load() == 0 || more[1].batches.Load() == 0 {
		t.Fatalf("after the scale-out the new consumers applied %d and %d batches; want both to take partitions", more[0].batches.Load(), more[1].batches.Load())
	}
	before := first.batches.Load()
	progress(0.6)
	if first.batches.Load() == before {
		t.Error("the first consumer did nothing while three ran")
	}
	for _, c := range more { // 3 → 1, abruptly
		c.stop(t)
	}
	h.waitFor(want, 3*time.Minute)
	first.stop(t)
	h.verify(evs, want)
}

func TestPoisonMessagesAreDeadLettered(t *testing.T) {
	h := newHarness(t)
	evs, want := burst(10)
	msgs := encodeAll(t, evs)
	invalid, _ := eventstream.Encode(context.Background(), &feedbackv1.Event{EventId: "bad-1", Type: feedbackv1.EventType_EVENT_TYPE_CLICK, ItemId: "i1", EventTime: timestamppb.Now()}) // no user
	garbage := kafka.Message{Key: []byte("u1"), Value: []byte{0xff, 0xfe, 0x00, 0x13, 0x37}}
	msgs = append(msgs[:5], append([]kafka.Message{garbage, invalid}, msgs[5:]...)...)
	h.produce(msgs)

	c := h.start()
	h.waitFor(want, time.Minute)
	c.stop(t)
	h.verify(evs, want)

	r := kafka.NewReader(kafka.ReaderConfig{Brokers: h.brokers, Topic: h.dlq, Partition: 0, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var reasons []string
	for range 2 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read the dead-letter topic: %v", err)
		}
		reasons = append(reasons, headerValue(m, "x-recsys-dlq-class")+": "+headerValue(m, "x-recsys-dlq-reason"))
	}
	joined := strings.Join(reasons, "\n")
	if !strings.Contains(joined, "undecodable: not a recsys.feedback.v1.Event") || !strings.Contains(joined, "invalid: user_id") {
		t.Errorf("dead-letter reasons:\n%s\nwant one undecodable and one invalid naming user_id", joined)
	}
	if got := testutil.ToFloat64(h.metrics.deadLettered.WithLabelValues("undecodable")) + testutil.ToFloat64(h.metrics.deadLettered.WithLabelValues("invalid")); got != 2 {
		t.Errorf("dead-lettered metric = %v, want 2", got)
	}
}
