package featurestore

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Half-lives of the decayed counters: the "horizons" of the click and
// impression counts.
var horizons = []struct {
	suffix   string
	halfLife time.Duration
}{
	{"1h", time.Hour},
	{"1d", 24 * time.Hour},
	{"7d", 7 * 24 * time.Hour},
}

const (
	// AffinityHalfLife is the half-life of a user's per-category affinity.
	AffinityHalfLife = 7 * 24 * time.Hour
	// TrendingHalfLife is the half-life of item trending scores.
	TrendingHalfLife = 24 * time.Hour
	// RecentClicks is how many recently clicked items are kept per user.
	RecentClicks = 20
	// HistoryLength is how many consumed items (see Event.Consumed) are
	// kept per user: the newest, by the time of their latest consumption.
	HistoryLength = 1000
	// CTRPrior and CTRPriorWeight smooth click-through rates: the rate is
	// (clicks_7d + CTRPrior·CTRPriorWeight) / (impressions_7d + CTRPriorWeight),
	// so an entity with no history reads CTRPrior.
	CTRPrior       = 0.05
	CTRPriorWeight = 20.0
	// ImpressionTrendingWeight is an impression's weight in trending scores
	// (a click weighs 1).
	ImpressionTrendingWeight = 0.1
	// MaxEntitiesPerRead bounds one batch read.
	MaxEntitiesPerRead = 1000
)

// The hash fields of the 7-day counters the smoothed CTR reads.
var (
	weekClicks      = counterTag + "clicks_" + horizons[len(horizons)-1].suffix
	weekImpressions = counterTag + "impressions_" + horizons[len(horizons)-1].suffix
)

// Kind is the shape of a feature value.
type Kind int

// Feature kinds, matching the oneof of recsys.feature.v1.Feature.
const (
	Number Kind = iota
	Text
	List
	Weights
)

// Def documents one feature. The default is what a missing value reads as:
// 0 for numbers (CTRPrior for ctr), "" for text, empty for lists and weights.
type Def struct {
	Name string
	Kind Kind
	Doc  string
	// ByNameOnly features are read only when asked for by name: they are
	// large, and a read that names no feature leaves them out.
	ByNameOnly bool
	// Attribute features are the static profile and attributes loaded in
	// batch; events never change them.
	Attribute bool

	// For decayed counters: the hash field and the half-life.
	field    string
	halfLife time.Duration
}

func counterDefs(what string) []Def {
	var defs []Def
	for _, ev := range []string{"clicks", "impressions"} {
		for _, h := range horizons {
			name := ev + "_" + h.suffix
			defs = append(defs, Def{Name: name, Kind: Number, Doc: fmt.Sprintf("%s %s, decayed with a half-life of %s", what, ev, h.halfLife), field: counterTag + name, halfLife: h.halfLife})
		}
	}
	return defs
}

// UserFeatures and ItemFeatures list every feature, in the order reads
// return them when no names are asked for (all but the ByNameOnly ones).
var (
	UserFeatures = slices.Concat([]Def{
		{Name: "age", Attribute: true, Kind: Number, Doc: "age in years (profile)"},
		{Name: "gender", Attribute: true, Kind: Text, Doc: "gender (profile)"},
		{Name: "occupation", Attribute: true, Kind: Text, Doc: "occupation (profile)"},
		{Name: "zip_code", Attribute: true, Kind: Text, Doc: "zip code (profile)"},
	}, counterDefs("the user's"), []Def{
		{Name: "ctr", Kind: Number, Doc: "smoothed click-through rate over the 7-day counts"},
		{Name: "category_affinity", Kind: Weights, Doc: "decayed clicks per item category (7-day half-life)"},
		{Name: "recent_clicks", Kind: List, Doc: fmt.Sprintf("the last %d items clicked, newest first", RecentClicks)},
		{Name: "clicked", Kind: List, ByNameOnly: true,
			Doc: fmt.Sprintf("every item clicked (or rated at or above the click threshold in a batch load), newest first, up to %d", HistoryLength)},
		{Name: "history", Kind: List, ByNameOnly: true,
			Doc: fmt.Sprintf("every item consumed (clicked, or rated in a batch load), newest first, up to %d", HistoryLength)},
	})
	ItemFeatures = slices.Concat([]Def{
		{Name: "title", Attribute: true, Kind: Text, Doc: "title (attributes)"},
		{Name: "categories", Attribute: true, Kind: List, Doc: "categories (attributes)"},
		{Name: "year", Attribute: true, Kind: Number, Doc: "release year (attributes)"},
	}, counterDefs("the item's"), []Def{
		{Name: "ctr", Kind: Number, Doc: "smoothed click-through rate over the 7-day counts"},
		{Name: "trending_score", Kind: Number, Doc: "decayed clicks plus 0.1 × impressions (1-day half-life)"},
	})
)

// UnknownFeaturesError names the requested features that do not exist.
type UnknownFeaturesError struct {
	Names []string
	Known []Def
}

func (e *UnknownFeaturesError) Error() string {
	known := make([]string, len(e.Known))
	for i, d := range e.Known {
		known[i] = d.Name
	}
	return fmt.Sprintf("unknown feature names %s; known: %s", strings.Join(e.Names, ", "), strings.Join(known, ", "))
}

// The features a read that names none returns.
var (
	userDefaults = withoutByNameOnly(UserFeatures)
	itemDefaults = withoutByNameOnly(ItemFeatures)
)

func withoutByNameOnly(all []Def) []Def {
	return slices.DeleteFunc(slices.Clone(all), func(d Def) bool { return d.ByNameOnly })
}

// selectDefs returns the defs for names (defaults when empty) or an
// *UnknownFeaturesError naming every known one.
func selectDefs(all, defaults []Def, names []string) ([]Def, error) {
	if len(names) == 0 {
		return defaults, nil
	}
	out := make([]Def, 0, len(names))
	var unknown []string
	for _, n := range names {
		i := slices.IndexFunc(all, func(d Def) bool { return d.Name == n })
		if i < 0 {
			unknown = append(unknown, n)
			continue
		}
		out = append(out, all[i])
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, &UnknownFeaturesError{Names: unknown, Known: all}
	}
	return out, nil
}
