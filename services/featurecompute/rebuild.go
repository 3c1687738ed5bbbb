package featurecompute

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/featurestore"
)

// RebuildConfig says what to replay.
type RebuildConfig struct {
	Kafka eventstream.Cluster
	Topic string
	// From is the earliest event time replayed; zero replays the whole log.
	From time.Time
	// FromOffsets, when set, is where each partition's replay starts
	// (partitions it does not name start at their first offset).
	FromOffsets eventstream.Offsets
	// Settle is how long readers take to follow a switch (their refresh
	// interval, with margin).
	Settle time.Duration
}

// RebuildResult says what a rebuild did.
type RebuildResult struct {
	Generation, Previous string
	Static               int // entities whose profile or attributes were copied
	Replayed, CaughtUp   int // events applied before and after the switch
}

// Rebuild recomputes every real-time feature and experiment counter from
// the event log into a fresh generation of keys and switches every reader
// and the stream processor to it at once:
//
//  1. copy the static features (profiles, attributes) into the new
//     generation;
//  2. replay the log from cfg.From to its current end into it;
//  3. switch the active generation (one atomic SET);
//  4. once readers have followed, replay what arrived since step 2, so
//     nothing the running consumer applied to the old generation in the
//     meantime is missing (de-duplication makes the overlap harmless).
//
// The old generation's keys stay until an operator deletes them.
func Rebuild(ctx context.Context, cfg RebuildConfig, store *featurestore.Store, logger *slog.Logger) (RebuildResult, error) {
	res := RebuildResult{Generation: fmt.Sprintf("g%d:", time.Now().UnixMilli()), Previous: store.Generation()}
	target := store.WithGeneration(res.Generation)
	var err error
	if res.Static, err = store.CopyStatic(ctx, target); err != nil {
		return res, err
	}
	start, err := eventstream.Starts(ctx, cfg.Kafka, cfg.Topic, cfg.From)
	if err != nil {
		return res, err
	}
	for p, off := range cfg.FromOffsets {
		first, ok := start[p]
		if !ok {
			return res, fmt.Errorf("rebuild from offset %d of partition %d: topic %s has %d partitions (0..%d)", off, p, cfg.Topic, len(start), len(start)-1)
		}
		start[p] = max(first, off) // what retention deleted is gone
	}
	mid, err := eventstream.Ends(ctx, cfg.Kafka, cfg.Topic)
	if err != nil {
		return res, err
	}
	if res.Replayed, err = replay(ctx, cfg, target, start, mid); err != nil {
		return res, err
	}
	if err := store.Switch(ctx, res.Generation); err != nil {
		return res, err
	}
	logger.Info("switched to the rebuilt generation", "generation", res.Generation, "previous", res.Previous)
	select {
	case <-time.After(cfg.Settle):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	end, err := eventstream.Ends(ctx, cfg.Kafka, cfg.Topic)
	if err != nil {
		return res, err
	}
	for p, off := range start { // an offset past the first replay's end
		mid[p] = max(mid[p], off)
	}
	if res.CaughtUp, err = replay(ctx, cfg, target, mid, end); err != nil {
		return res, err
	}
	return res, nil
}

// replay applies the valid events of [from, to) to the store in batches.
func replay(ctx context.Context, cfg RebuildConfig, to *featurestore.Store, from, until eventstream.Offsets) (int, error) {
	var batch []featurestore.Event
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := to.ApplyEvents(ctx, batch); err != nil {
			return err
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	err := eventstream.ReadRange(ctx, cfg.Kafka, cfg.Topic, from, until, func(m kafka.Message) error {
		e, err := eventstream.Decode(m)
		if err != nil {
			return nil // the live consumer dead-lettered it already
		}
		ev, err := eventstream.Check(e)
		if err != nil {
			return nil // likewise
		}
		if !cfg.From.IsZero() && ev.Time.Before(cfg.From) {
			return nil
		}
		batch = append(batch, ev)
		if len(batch) == 1000 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	return n, flush()
}
