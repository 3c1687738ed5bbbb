package featurestore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	"github.com/recsys/recsys/libs/testenv"
)

// benchStore is a store on the test Redis, with its own client.
func benchStore(b *testing.B) (*testenv.Redis, *redis.Client, *Store) {
	env := testenv.NewRedis(b)
	rdb := redis.NewClient(&redis.Options{Addr: env.Addr})
	b.Cleanup(func() { rdb.Close() })
	s, err := New(rdb, env.Prefix)
	if err != nil {
		b.Fatal(err)
	}
	return env, rdb, s
}

// BenchmarkRead500Items reads every feature of 500 items, in columns (as
// ranking's cache reads them) and one FeatureSet per item, and, in the
// same run on the same Redis, a raw pipelined HGETALL of the same 500
// keys. It reports the p50/p99 of each and the columns' ratio to raw
// (target ≤ 1.5 at p99), and the sets' ratio beside it.
func BenchmarkRead500Items(b *testing.B) {
	env, rdb, s := benchStore(b)
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
	columns := func() error {
		_, err := s.ItemColumns(ctx, ids, nil)
		return err
	}
	t := testenv.Interleave(b, store, columns, raw)
	tStore, tCols, tRaw := t[0], t[1], t[2]
	p := func(d []time.Duration, q float64) float64 { return float64(testenv.Quantile(d, q).Microseconds()) }
	b.ReportMetric(p(tStore, .5), "store-p50-µs")
	b.ReportMetric(p(tStore, .99), "store-p99-µs")
	b.ReportMetric(p(tRaw, .5), "raw-p50-µs")
	b.ReportMetric(p(tRaw, .99), "raw-p99-µs")
	b.ReportMetric(p(tCols, .5), "columns-p50-µs")
	b.ReportMetric(p(tCols, .99), "columns-p99-µs")
	b.ReportMetric(p(tStore, .99)/p(tRaw, .99), "sets-ratio-p99")
	b.ReportMetric(p(tCols, .5)/p(tRaw, .5), "ratio-p50")
	b.ReportMetric(p(tCols, .99)/p(tRaw, .99), "ratio-p99")
	b.ReportMetric(0, "ns/op")
	b.Logf("Redis: %s", env.Kind)
}

// BenchmarkApplyEvents applies batches of 500 new events (200 users, 300
// items, a two-arm experiment, one in five a click), one ApplyEvents per
// op, and reports events/s and the CPU time Redis spent per event (from
// INFO, so exact only when nothing else uses that Redis): one Redis applies
// at most a million over that many events a second, whatever the number of
// stream processors.
func BenchmarkApplyEvents(b *testing.B) {
	env, rdb, s := benchStore(b)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	n := 0
	next := func() []Event {
		evs := make([]Event, 500)
		for i := range evs {
			kind, arm := Impression, []string{"control", "treatment"}[rng.IntN(2)]
			if rng.IntN(5) == 0 {
				kind = Click
			}
			evs[i] = Event{ID: fmt.Sprintf("bench-%d", n), Kind: kind, UserID: fmt.Sprintf("u%d", rng.IntN(200)), ItemID: fmt.Sprintf("i%d", rng.IntN(300)),
				ExperimentID: "bench", Arm: arm, ModelVersion: "v-" + arm, Time: now.Add(-time.Duration(rng.Int64N(int64(time.Hour))))}
			n++
		}
		return evs
	}
	cpu0, cpuErr := redisCPU(ctx, rdb)
	start := time.Now()
	for b.Loop() {
		if _, err := s.ApplyEvents(ctx, next()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
	if cpu1, err := redisCPU(ctx, rdb); err == nil && cpuErr == nil {
		b.ReportMetric((cpu1-cpu0)/float64(n)*1e6, "redis-cpu-µs/event")
	} else {
		b.Logf("no Redis CPU time (%s): %v", env.Kind, errors.Join(cpuErr, err))
	}
	b.ReportMetric(0, "ns/op")
}

// redisCPU is the CPU time Redis has used, in seconds.
func redisCPU(ctx context.Context, rdb *redis.Client) (float64, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var sum float64
	found := 0
	for _, l := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(l, ":")
		if k == "used_cpu_user" || k == "used_cpu_sys" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("INFO cpu %s: %w", k, err)
			}
			sum += f
			found++
		}
	}
	if found != 2 {
		return 0, errors.New("INFO cpu has no used_cpu_user and used_cpu_sys")
	}
	return sum, nil
}
