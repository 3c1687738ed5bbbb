package featureservice

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	featurev1 "github.com/recsys/recsys/gen/go/recsys/feature/v1"
)

// TestColumnsRoundTrip: Sets(Columns(sets)) gives the sets back, ages
// aside (columns carry none).
func TestColumnsRoundTrip(t *testing.T) {
	set := func(id string, missing bool, clicks float64, title string, cats ...string) *featurev1.FeatureSet {
		return &featurev1.FeatureSet{EntityId: id, Missing: missing, Features: map[string]*featurev1.Feature{
			"clicks_7d":  {Value: &featurev1.Feature_Number{Number: clicks}},
			"year":       {Value: &featurev1.Feature_Number{Number: 1990}},
			"title":      {Value: &featurev1.Feature_Text{Text: title}},
			"categories": {Value: &featurev1.Feature_List{List: &featurev1.StringList{Values: cats}}},
		}}
	}
	sets := []*featurev1.FeatureSet{set("a", false, 3, "A", "Drama", "Comedy"), set("b", true, 0, ""), set("c", false, 1.5, "C", "Action")}
	for _, f := range sets[1].GetFeatures() { // b has nothing stored: defaults
		f.Missing = true
	}
	cols := Columns(sets)
	if len(cols.GetNumbers()) != 2 || cols.GetNumbers()[0].GetName() != "clicks_7d" || len(cols.GetTexts()) != 1 || len(cols.GetLists()) != 1 {
		t.Fatalf("Columns = %v, want 2 number columns (sorted), 1 text, 1 list", cols)
	}
	got := Sets(cols)
	// An empty list comes back as an empty StringList, as the store writes it.
	sets[1].Features["categories"].GetList().Values = nil
	if diff := cmp.Diff(sets, got, protocmp.Transform(), protocmp.IgnoreEmptyMessages()); diff != "" {
		t.Errorf("Sets(Columns(sets)) differs (-want +got):\n%s", diff)
	}
}
