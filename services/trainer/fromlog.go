package trainer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/modelrt"
)

func metaJSON(m *modelrt.Metadata) ([]byte, error) { return json.MarshalIndent(m, "", "  ") }

// FromLog reads the whole ranking.served log and the clicks of
// feedback.events, and joins them on (request id, item id): every served
// item is a row with exactly the features it was scored with, labelled 1
// when it was clicked. Rows served with another feature list than meta's
// are left out (and counted).
func FromLog(ctx context.Context, brokers []string, meta *modelrt.Metadata, out io.Writer) ([]Example, error) {
	clicked := map[string]bool{}
	if err := readTopic(ctx, brokers, eventstream.FeedbackTopic, func(m kafka.Message) {
		e, err := eventstream.Decode(m)
		if err == nil && e.GetType() == feedbackv1.EventType_EVENT_TYPE_CLICK && e.GetRequestId() != "" {
			clicked[e.GetRequestId()+"\x1f"+e.GetItemId()] = true
		}
	}); err != nil {
		return nil, err
	}
	names := make([]string, len(meta.Features))
	for i, f := range meta.Features {
		names[i] = f.Name
	}
	var ex []Example
	skipped, served := 0, 0
	if err := readTopic(ctx, brokers, eventstream.ServedTopic, func(m kafka.Message) {
		r := &rankingv1.ServedRanking{}
		if proto.Unmarshal(m.Value, r) != nil {
			skipped++
			return
		}
		served++
		if !slices.Equal(r.GetFeatureNames(), names) {
			skipped++
			return
		}
		for _, it := range r.GetItems() {
			label := float32(0)
			if clicked[r.GetRequestId()+"\x1f"+it.GetItemId()] {
				label = 1
			}
			ex = append(ex, Example{UserID: r.GetUserId(), ItemID: it.GetItemId(), Row: it.GetFeatures(), Label: label, Time: r.GetServedAt().AsTime()})
		}
	}); err != nil {
		return nil, err
	}
	sort.SliceStable(ex, func(i, j int) bool { return ex[i].Time.Before(ex[j].Time) })
	fmt.Fprintf(out, "feature log: %d rankings served, %d left out (other features or unreadable), %d rows, %d clicks joined\n", served, skipped, len(ex), len(clicked))
	if len(ex) == 0 {
		return nil, fmt.Errorf("the feature log on %v has no rows with the features %v", brokers, names)
	}
	return ex, nil
}

// readTopic calls f for every message of every partition of topic, from
// the first offset to the end as it is when the partition is opened.
func readTopic(ctx context.Context, brokers []string, topic string, f func(kafka.Message)) error {
	d := &kafka.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", brokers[0])
	if err != nil {
		return fmt.Errorf("kafka %s: %w", brokers[0], err)
	}
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	if err != nil {
		return fmt.Errorf("kafka topic %s: %w", topic, err)
	}
	for _, p := range parts {
		leader, err := d.DialLeader(ctx, "tcp", net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port)), topic, p.ID)
		if err != nil {
			return fmt.Errorf("kafka %s/%d: %w", topic, p.ID, err)
		}
		first, last, err := leader.ReadOffsets()
		leader.Close()
		if err != nil {
			return fmt.Errorf("kafka %s/%d offsets: %w", topic, p.ID, err)
		}
		if last <= first {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MaxWait: 100 * time.Millisecond, MaxBytes: 10 << 20})
		r.SetOffset(first)
		for {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			m, err := r.ReadMessage(rctx)
			cancel()
			if err != nil {
				r.Close()
				return fmt.Errorf("read %s/%d: %w", topic, p.ID, err)
			}
			f(m)
			if m.Offset >= last-1 {
				break
			}
		}
		r.Close()
	}
	return nil
}
