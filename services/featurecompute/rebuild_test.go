package featurecompute

import (
	"context"
	"io"
	"maps"
	"strings"
	"testing"
	"time"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/testenv"
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
	go h.store.Follow(followCtx, 50*time.Millisecond, testenv.DiscardLogger())
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
	res, err := Rebuild(ctx, RebuildConfig{Kafka: eventstream.Plain(h.brokers...), Topic: h.topic, Settle: 300 * time.Millisecond}, h.store, testenv.DiscardLogger())
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
	logger := testenv.DiscardLogger()
	if err := dropGeneration(ctx, h.store, generationArg(res.Previous), logger, io.Discard); err != nil {
		t.Fatal(err)
	}
	if us, err := h.store.WithGeneration(res.Previous).Users(ctx, []string{"u1"}, nil); err != nil || !us[0].GetMissing() {
		t.Errorf("after drop-generation %s user u1 there = %v, %v; want missing", generationArg(res.Previous), us, err)
	}
	if err := dropGeneration(ctx, h.store, generationArg(res.Generation), logger, io.Discard); err == nil {
		t.Error("drop-generation of the active generation succeeded")
	}
	h.verify(evs, want)
}

// TestRebuildFromOffsets replays each partition from a given offset: the
// new generation counts exactly the events from there on.
func TestRebuildFromOffsets(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	evs, _ := burst(300)
	h.produce(encodeAll(t, evs))
	rc, err := parseRebuild("0=20,1=20,2=20")
	if err != nil {
		t.Fatal(err)
	}
	rc.Kafka, rc.Topic = eventstream.Plain(h.brokers...), h.topic
	res, err := Rebuild(ctx, rc, h.store, testenv.DiscardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.Refresh(ctx); err != nil { // follow the switch
		t.Fatal(err)
	}
	if res.Replayed != 300-3*20 || total(h.counts()) != 300-3*20 {
		t.Errorf("rebuild from offset 20 of each of 3 partitions replayed %d events and counts %d; want %d", res.Replayed, total(h.counts()), 300-3*20)
	}
	rc.FromOffsets = map[int]int64{7: 0}
	if _, err := Rebuild(ctx, rc, h.store, testenv.DiscardLogger()); err == nil || !strings.Contains(err.Error(), "has 3 partitions") {
		t.Errorf("rebuild from partition 7 of 3: err = %v, want it refused naming the partitions", err)
	}
}

func TestParseRebuild(t *testing.T) {
	for _, c := range []struct {
		in   string
		want RebuildConfig
		err  string
	}{
		{in: "all"},
		{in: "2026-11-28T00:00:00Z", want: RebuildConfig{From: time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)}},
		{in: "0=1200,2=7", want: RebuildConfig{FromOffsets: map[int]int64{0: 1200, 2: 7}}},
		{in: "0=-1", err: `"0=-1" is not partition=offset`},
		{in: "0=1,0=2", err: "partition 0 is given twice"},
		{in: "yesterday", err: "want \"all\", an RFC 3339 time"},
	} {
		got, err := parseRebuild(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("parseRebuild(%q) error = %v, want one containing %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || !got.From.Equal(c.want.From) || !maps.Equal(got.FromOffsets, c.want.FromOffsets) {
			t.Errorf("parseRebuild(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}
}
