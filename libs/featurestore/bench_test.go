package featurestore

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	"github.com/recsys/recsys/libs/testenv"
)

// BenchmarkRead500Items reads every feature of 500 items and, in the same
// run on the same Redis, a raw pipelined HGETALL of the same 500 keys. It
// reports the p50/p99 of both and their ratio (target ≤ 1.5).
func BenchmarkRead500Items(b *testing.B) {
	env := testenv.NewRedis(b)
	rdb := redis.NewClient(&redis.Options{Addr: env.Addr})
	defer rdb.Close()
	s, err := New(rdb, env.Prefix)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ids := make([]string, 500)
	items := make([]*itemfeaturesv1.ItemAttributes, 500)
	var events []Event
	for i := range ids {
		ids[i] = fmt.Sprintf("item-%d", i)
		items[i] = &itemfeaturesv1.ItemAttributes{ItemId: ids[i], Title: "Title " + ids[i], Categories: []string{"Drama", "Comedy"}, Year: 1990}
		events = append(events,
			Event{ID: "i" + ids[i], Kind: Impression, UserID: "u", ItemID: ids[i], Time: time.Now()},
			Event{ID: "c" + ids[i], Kind: Click, UserID: "u", ItemID: ids[i], Time: time.Now()})
	}
	if err := s.UpsertItems(ctx, items); err != nil {
		b.Fatal(err)
	}
	if _, err := s.ApplyEvents(ctx, events); err != nil {
		b.Fatal(err)
	}
	raw := func() error {
		pipe := rdb.Pipeline()
		for _, id := range ids {
			pipe.HGetAll(ctx, s.keys().itemKey(id))
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	store := func() error {
		_, err := s.Items(ctx, ids, nil)
		return err
	}
	var tStore, tRaw []time.Duration
	b.ResetTimer()
	for b.Loop() {
		for _, m := range []struct {
			f   func() error
			out *[]time.Duration
		}{{store, &tStore}, {raw, &tRaw}} {
			start := time.Now()
			if err := m.f(); err != nil {
				b.Fatal(err)
			}
			*m.out = append(*m.out, time.Since(start))
		}
	}
	b.StopTimer()
	p := func(d []time.Duration, q float64) float64 {
		slices.Sort(d)
		return float64(d[int(q*float64(len(d)-1))].Microseconds())
	}
	b.ReportMetric(p(tStore, .5), "store-p50-µs")
	b.ReportMetric(p(tStore, .99), "store-p99-µs")
	b.ReportMetric(p(tRaw, .5), "raw-p50-µs")
	b.ReportMetric(p(tRaw, .99), "raw-p99-µs")
	b.ReportMetric(p(tStore, .5)/p(tRaw, .5), "ratio-p50")
	b.ReportMetric(0, "ns/op")
	b.Logf("Redis: %s", env.Kind)
}
