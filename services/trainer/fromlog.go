package trainer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	"github.com/recsys/recsys/libs/evaluation"
	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/modelrt"
)

func metaJSON(m *modelrt.Metadata) ([]byte, error) { return json.MarshalIndent(m, "", "  ") }

// FromLog reads the whole ranking.served log and the clicks of
// feedback.events, and joins them on (request id, item id): every served
// item is a row with exactly the features it was scored with, labelled 1
// when it was clicked. Rows served with another feature list than meta's
// are left out (and counted).
func FromLog(ctx context.Context, c eventstream.Cluster, meta *modelrt.Metadata, out io.Writer) ([]Example, error) {
	clicked := map[string]bool{}
	if err := readTopic(ctx, c, eventstream.FeedbackTopic, func(m kafka.Message) {
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
	if err := readTopic(ctx, c, eventstream.ServedTopic, func(m kafka.Message) {
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
			ex = append(ex, Example{UserID: r.GetUserId(), ItemID: it.GetItemId(), RequestID: r.GetRequestId(), Row: it.GetFeatures(), Label: label, Time: r.GetServedAt().AsTime()})
		}
	}); err != nil {
		return nil, err
	}
	sort.SliceStable(ex, func(i, j int) bool { return ex[i].Time.Before(ex[j].Time) })
	fmt.Fprintf(out, "feature log: %d rankings served, %d left out (other features or unreadable), %d rows, %d clicks joined\n", served, skipped, len(ex), len(clicked))
	if len(ex) == 0 {
		return nil, fmt.Errorf("the feature log on %v has no rows with the features %v", c.Brokers, names)
	}
	return ex, nil
}

// ClicksFromLog reads every click of feedback.events as an interaction
// for the retrieval stage; the catalogue is the clicked items.
func ClicksFromLog(ctx context.Context, c eventstream.Cluster, out io.Writer) (*evaluation.Data, error) {
	var ins []evaluation.Interaction
	if err := readTopic(ctx, c, eventstream.FeedbackTopic, func(m kafka.Message) {
		e, err := eventstream.Decode(m)
		if err == nil && e.GetType() == feedbackv1.EventType_EVENT_TYPE_CLICK {
			ins = append(ins, evaluation.Interaction{User: e.GetUserId(), Item: e.GetItemId(), Time: e.GetEventTime().AsTime(), Relevant: true})
		}
	}); err != nil {
		return nil, err
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("%s on %v has no clicks", eventstream.FeedbackTopic, c.Brokers)
	}
	d := evaluation.NewData(ins, nil)
	fmt.Fprintf(out, "click log: %d clicks by %d users on %d items\n", len(ins), len(d.Users), len(d.Items))
	return d, nil
}

// readTopic calls f for every message of topic, from the first offset to
// the end as it is now.
func readTopic(ctx context.Context, c eventstream.Cluster, topic string, f func(kafka.Message)) error {
	from, err := eventstream.Starts(ctx, c, topic, time.Time{})
	if err != nil {
		return err
	}
	to, err := eventstream.Ends(ctx, c, topic)
	if err != nil {
		return err
	}
	return eventstream.ReadRange(ctx, c, topic, from, to, func(m kafka.Message) error { f(m); return nil })
}
