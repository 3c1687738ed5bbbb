package featureservice

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

// BenchmarkItemTransport reads every feature of 500 items through the item
// service's gRPC server, as ranking does, answered one FeatureSet per item
// and answered in columns (decoded back into sets, as ranking's cache
// keeps them), and, in the same run on the same Redis, a raw pipelined
// HGETALL of the same 500 keys. It reports each p50/p99 and the ratios to
// raw, p99 with p99: what the transport costs over the data it carries.
func BenchmarkItemTransport(b *testing.B) {
	env := testenv.NewRedis(b)
	rdb := redis.NewClient(&redis.Options{Addr: env.Addr})
	b.Cleanup(func() { rdb.Close() })
	store, err := featurestore.New(rdb, env.Prefix)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ids := make([]string, 500)
	items := make([]*itemfeaturesv1.ItemAttributes, len(ids))
	var events []featurestore.Event
	for i := range ids {
		ids[i] = fmt.Sprintf("item-%d", i)
		items[i] = &itemfeaturesv1.ItemAttributes{ItemId: ids[i], Title: "Title " + ids[i], Categories: []string{"Drama", "Comedy"}, Year: 1990}
		events = append(events,
			featurestore.Event{ID: "i" + ids[i], Kind: featurestore.Impression, UserID: "u", ItemID: ids[i], Time: time.Now()},
			featurestore.Event{ID: "c" + ids[i], Kind: featurestore.Click, UserID: "u", ItemID: ids[i], Time: time.Now()})
	}
	if err := store.UpsertItems(ctx, items); err != nil {
		b.Fatal(err)
	}
	if _, err := store.ApplyEvents(ctx, events); err != nil {
		b.Fatal(err)
	}
	srv := testenv.Serve(b, func(s *serving.Server) {
		itemfeaturesv1.RegisterItemFeatureServiceServer(s.GRPC(), &ItemServer{Store: store, Metrics: NewMetrics(prometheus.NewRegistry())})
	})
	client := itemfeaturesv1.NewItemFeatureServiceClient(srv.Conn)
	sets := func() error {
		resp, err := client.GetItemFeatures(ctx, &itemfeaturesv1.GetItemFeaturesRequest{ItemIds: ids})
		if err == nil && len(resp.GetItems()) != len(ids) {
			err = fmt.Errorf("%d sets", len(resp.GetItems()))
		}
		return err
	}
	columns := func() error {
		resp, err := client.GetItemFeatures(ctx, &itemfeaturesv1.GetItemFeaturesRequest{ItemIds: ids, Columnar: true})
		if err == nil && len(Sets(resp.GetColumns())) != len(ids) {
			err = fmt.Errorf("%d entities in columns", len(resp.GetColumns().GetEntityIds()))
		}
		return err
	}
	raw := func() error {
		pipe := rdb.Pipeline()
		for _, id := range ids {
			pipe.HGetAll(ctx, store.ItemKey(id))
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	for range 5 { // connections and the server's first calls
		sets()
		columns()
	}
	t := testenv.Interleave(b, sets, columns, raw)
	tSets, tCols, tRaw := t[0], t[1], t[2]
	p := func(d []time.Duration, q float64) float64 { return float64(testenv.Quantile(d, q).Microseconds()) }
	b.ReportMetric(p(tSets, .5), "sets-p50-µs")
	b.ReportMetric(p(tSets, .99), "sets-p99-µs")
	b.ReportMetric(p(tCols, .5), "columns-p50-µs")
	b.ReportMetric(p(tCols, .99), "columns-p99-µs")
	b.ReportMetric(p(tRaw, .99), "raw-p99-µs")
	b.ReportMetric(p(tSets, .99)/p(tRaw, .99), "sets/raw-p99")
	b.ReportMetric(p(tCols, .99)/p(tRaw, .99), "columns/raw-p99")
	b.ReportMetric(0, "ns/op")
}
