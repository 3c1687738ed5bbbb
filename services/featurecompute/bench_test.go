package featurecompute

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/types/known/timestamppb"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/eventstream"
)

// BenchmarkPipeline pushes a burst of events through Kafka and the stream
// processor into Redis and reports events/s end to end, next to the rate of
// raw kafka-go producing and consuming the same messages on the same broker
// (no processing). Target: ≥ 20k events/s, sustained: the burst is long
// enough (~6 s) that the group join and the last partial batch do not
// count for much.
func BenchmarkPipeline(b *testing.B) {
	const n = 200_000
	for b.Loop() {
		h := newHarness(b)
		evs, want := burst(n)
		msgs := encodeAll(b, evs)

		// Raw: produce and consume the same messages on another topic.
		rawTopic := h.topic + "-raw"
		eventstream.EnsureTopics(context.Background(), eventstream.Plain(h.brokers...), 3, rawTopic)
		start := time.Now()
		w := eventstream.NewWriter(eventstream.Plain(h.brokers...), rawTopic)
		for i := 0; i < n; i += 5000 {
			if err := w.WriteMessages(context.Background(), msgs[i:i+5000]...); err != nil {
				b.Fatal(err)
			}
		}
		w.Close()
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: h.brokers, Topic: rawTopic, GroupID: rawTopic + "-g", MaxWait: 100 * time.Millisecond})
		for i := 0; i < n; i++ {
			if _, err := r.FetchMessage(context.Background()); err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
		raw := float64(n) / time.Since(start).Seconds()

		start = time.Now()
		c := h.start()
		h.produce(msgs)
		h.waitFor(want, 5*time.Minute)
		pipeline := float64(n) / time.Since(start).Seconds()
		c.stop(b)

		b.ReportMetric(pipeline, "pipeline-events/s")
		b.ReportMetric(raw, "raw-kafka-go-events/s")
		b.ReportMetric(pipeline/raw, "ratio")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkClickToVisible measures, with timestamps, how long a click takes
// from being written (as RecordEvents writes it) to being visible in the
// user's features. Target: p99 ≤ 1 s.
func BenchmarkClickToVisible(b *testing.B) {
	h := newHarness(b)
	c := h.start()
	defer c.stop(b)
	w := eventstream.NewWriter(eventstream.Plain(h.brokers...), h.topic)
	defer w.Close()
	ctx := context.Background()
	var lat []time.Duration
	i := 0
	for b.Loop() {
		user, item := fmt.Sprintf("bench-u%d", i%50), fmt.Sprintf("bench-i%d", i)
		i++
		sent := time.Now()
		m, _ := eventstream.Encode(ctx, &feedbackv1.Event{EventId: "click-" + item, Type: feedbackv1.EventType_EVENT_TYPE_CLICK,
			UserId: user, ItemId: item, EventTime: timestamppb.New(sent)})
		if err := w.WriteMessages(ctx, m); err != nil {
			b.Fatal(err)
		}
		for {
			us, err := h.store.Users(ctx, []string{user}, []string{"recent_clicks"})
			if err != nil {
				b.Fatal(err)
			}
			if vals := us[0].GetFeatures()["recent_clicks"].GetList().GetValues(); len(vals) > 0 && vals[0] == item {
				break
			}
			if time.Since(sent) > 10*time.Second {
				b.Fatalf("click %s not visible after 10s", item)
			}
			time.Sleep(500 * time.Microsecond)
		}
		lat = append(lat, time.Since(sent))
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(.5), "p50-ms")
	b.ReportMetric(q(.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
