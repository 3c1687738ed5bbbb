package featurecompute

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
)

// TestRebuild recomputes every feature from the log into a new generation
// while events keep arriving, switches readers and the consumer to it, and
// checks that the new generation holds exactly what all events imply and
// that static attributes survived.
func TestRebuild(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if err := h.store.UpsertItems(ctx, []*itemfeaturesv1.ItemAttributes{{ItemId: "i7", Title: "Heat", Categories: []string{"Crime"}}}); err != nil {
		t.Fatal(err)
	}
	evs, want := burst(4000)
	first, rest := evs[:3000], evs[3000:]
	followCtx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	go h.store.Follow(followCtx, 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c := h.start()
	defer c.stop(t)
	h.produce(encodeAll(t, first))
	for total(h.counts()) < 3000 {
		time.Sleep(20 * time.Millisecond)
	}

	before := h.store.Generation()
	produced := make(chan struct{})
	go func() { // events keep arriving before, during and after the switch
		defer close(produced)
		msgs := encodeAll(t, rest)
		for i := 0; i < len(msgs); i += 50 {
			h.produce(msgs[i:min(i+50, len(msgs))])
			time.Sleep(30 * time.Millisecond)
		}
	}()
	res, err := Rebuild(ctx, RebuildConfig{Brokers: h.brokers, Topic: h.topic, Settle: 300 * time.Millisecond}, h.store, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	<-produced
	if res.Generation == before || h.store.Generation() != res.Generation {
		t.Fatalf("generation %q → %q, store follows %q: want the store on the new one", before, res.Generation, h.store.Generation())
	}
	if res.Static != 1 || res.Replayed < 3000 {
		t.Errorf("rebuild %+v: want 1 static entity copied and at least the 3000 first events replayed", res)
	}
	h.waitFor(want, time.Minute)
	h.verify(evs, want)
	items, err := h.store.Items(ctx, []string{"i7"}, []string{"title"})
	if err != nil || items[0].GetFeatures()["title"].GetText() != "Heat" {
		t.Errorf("after the rebuild i7's title = %v, %v; want Heat (static attributes copied)", items, err)
	}
	t.Logf("%+v", res)

	// What readers left can go; what they use cannot.
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := dropGeneration(ctx, h.store, generationFlag(res.Previous), logger); err != nil {
		t.Fatal(err)
	}
	if us, err := h.store.WithGeneration(res.Previous).Users(ctx, []string{"u1"}, nil); err != nil || !us[0].GetMissing() {
		t.Errorf("after -drop-generation=%s user u1 there = %v, %v; want missing", generationFlag(res.Previous), us, err)
	}
	if err := dropGeneration(ctx, h.store, generationFlag(res.Generation), logger); err == nil {
		t.Error("-drop-generation of the active generation succeeded")
	}
	h.verify(evs, want)
}
