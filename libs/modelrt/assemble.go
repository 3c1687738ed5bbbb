package modelrt

import (
	"math"
	"slices"
	"strconv"
	"strings"

	featurev1 "github.com/recsys/recsys/gen/go/recsys/feature/v1"
)

// Rows writes one input row per item into dst (grown as needed) exactly as
// the metadata says, and returns it: len(items) × len(Features) floats,
// row-major. user or an item may be nil (its features unknown): defaults
// are used. The user's part of each row is computed once.
func (m *Metadata) Rows(userID string, user *featurev1.FeatureSet, itemIDs []string, items []*featurev1.FeatureSet, dst []float32) []float32 {
	width := len(m.Features)
	dst = slices.Grow(dst[:0], len(itemIDs)*width)[:len(itemIDs)*width]
	// Columns that depend on the user alone are the same in every row.
	userCols := make([]float32, width)
	userOnly := make([]bool, width)
	for c, f := range m.Features {
		if f.Source == "user_id" || strings.HasPrefix(f.Source, "user.") {
			userOnly[c] = true
			userCols[c] = m.value(f, userID, user, "", nil)
		}
	}
	for r, id := range itemIDs {
		var it *featurev1.FeatureSet
		if r < len(items) {
			it = items[r]
		}
		row := dst[r*width : (r+1)*width]
		for c, f := range m.Features {
			if userOnly[c] {
				row[c] = userCols[c]
				continue
			}
			row[c] = m.value(f, userID, user, id, it)
		}
	}
	return dst
}

// value is one cell.
func (m *Metadata) value(f Feature, userID string, user *featurev1.FeatureSet, itemID string, item *featurev1.FeatureSet) float32 {
	switch f.Source {
	case "user_id":
		return m.transform(f, 0, userID, true)
	case "item_id":
		return m.transform(f, 0, itemID, true)
	case "item.category":
		cats := get(item, "categories").GetList().GetValues()
		if len(cats) == 0 {
			return f.Default
		}
		return m.transform(f, 0, cats[0], true)
	case "user_item.category_affinity":
		aff := get(user, "category_affinity").GetWeights().GetWeights()
		cats := get(item, "categories").GetList().GetValues()
		if len(aff) == 0 || len(cats) == 0 {
			return f.Default
		}
		sum := 0.0
		for _, c := range cats {
			sum += aff[c]
		}
		return m.transform(f, sum, "", false)
	case "user_item.recent_click":
		recent := get(user, "recent_clicks").GetList().GetValues()
		if len(recent) == 0 {
			return f.Default
		}
		if slices.Contains(recent, itemID) {
			return 1
		}
		return 0
	}
	set, name := user, strings.TrimPrefix(f.Source, "user.")
	if strings.HasPrefix(f.Source, "item.") {
		set, name = item, strings.TrimPrefix(f.Source, "item.")
	}
	v := get(set, name)
	if v == nil || v.GetMissing() {
		return f.Default
	}
	switch x := v.GetValue().(type) {
	case *featurev1.Feature_Number:
		return m.transform(f, x.Number, strconv.FormatFloat(x.Number, 'g', -1, 64), false)
	case *featurev1.Feature_Text:
		return m.transform(f, 0, x.Text, true)
	}
	return f.Default
}

func (m *Metadata) transform(f Feature, x float64, text string, isText bool) float32 {
	switch f.Transform {
	case "hash":
		return m.Hashing.Bucket(text)
	case "log1p":
		return float32(math.Log1p(math.Max(x, 0)))
	}
	if isText {
		return f.Default // text without a hash transform has no number
	}
	return float32(x)
}

func get(set *featurev1.FeatureSet, name string) *featurev1.Feature {
	if set == nil {
		return nil
	}
	return set.GetFeatures()[name]
}
