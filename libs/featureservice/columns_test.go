package featureservice

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/testing/protocmp"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/testenv"
)

// TestColumnsCarryWhatSetsDo: a columnar read, laid out again as sets,
// gives what the per-item read gives, ages aside (columns carry none):
// values, defaults and missing flags, for items with and without
// attributes and counts, and one never stored.
func TestColumnsCarryWhatSetsDo(t *testing.T) {
	env := testenv.NewRedis(t)
	store, closeStore, err := featurestore.Open(env.Addr, env.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeStore() })
	ctx := context.Background()
	if err := store.UpsertItems(ctx, []*itemfeaturesv1.ItemAttributes{
		{ItemId: "a", Title: "A", Categories: []string{"Drama", "Comedy"}, Year: 1990},
		{ItemId: "b", Title: "B"},
	}); err != nil {
		t.Fatal(err)
	}
	var events []featurestore.Event
	for i, item := range []string{"a", "a", "c"} { // c: counts, no attributes
		events = append(events, featurestore.Event{ID: fmt.Sprint("e", i), Kind: featurestore.Click, UserID: "u", ItemID: item, Time: time.Now()})
	}
	if _, err := store.ApplyEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	ids := []string{"a", "b", "c", "never"}
	for _, names := range [][]string{nil, {"title", "clicks_7d", "categories"}} {
		sets, err := store.Items(ctx, ids, names)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := store.ItemColumns(ctx, ids, names)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sets {
			for _, f := range s.GetFeatures() {
				f.Age = nil
			}
		}
		// Decayed counts: the two reads are moments apart.
		approx := cmpopts.EquateApprox(1e-6, 0)
		if diff := cmp.Diff(sets, Sets(cols), protocmp.Transform(), protocmp.IgnoreEmptyMessages(), approx); diff != "" {
			t.Errorf("names %v: Sets(ItemColumns) differs from Items (-Items +columns):\n%s", names, diff)
		}
	}
}
