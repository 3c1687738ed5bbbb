package featureservice

import (
	featurev1 "github.com/recsys/recsys/gen/go/recsys/feature/v1"
)

func countTrue(flags []bool) int {
	n := 0
	for _, f := range flags {
		if f {
			n++
		}
	}
	return n
}

// Sets lays columns (featurestore.Store.ItemColumns) out as one FeatureSet
// per entity, with each value's missing flag, as a FeatureSet reader
// (ranking's cache, modelrt's rows) takes them. Features come without
// their age, which columns do not carry.
func Sets(c *featurev1.FeatureColumns) []*featurev1.FeatureSet {
	n := len(c.GetEntityIds())
	width := len(c.GetNumbers()) + len(c.GetTexts()) + len(c.GetLists())
	sets := make([]*featurev1.FeatureSet, n)
	// One allocation for all the feature messages of the read.
	values := make([]featurev1.Feature, n*width)
	numbers := make([]featurev1.Feature_Number, n*len(c.GetNumbers()))
	texts := make([]featurev1.Feature_Text, n*len(c.GetTexts()))
	lists := make([]featurev1.Feature_List, n*len(c.GetLists()))
	for i, id := range c.GetEntityIds() {
		fs := make(map[string]*featurev1.Feature, width)
		k := i * width
		for j, col := range c.GetNumbers() {
			v := &numbers[i*len(c.GetNumbers())+j]
			v.Number = at(col.GetValues(), i)
			values[k].Value, values[k].Missing = v, at(col.GetMissing(), i)
			fs[col.GetName()] = &values[k]
			k++
		}
		for j, col := range c.GetTexts() {
			v := &texts[i*len(c.GetTexts())+j]
			v.Text = at(col.GetValues(), i)
			values[k].Value, values[k].Missing = v, at(col.GetMissing(), i)
			fs[col.GetName()] = &values[k]
			k++
		}
		for j, col := range c.GetLists() {
			v := &lists[i*len(c.GetLists())+j]
			v.List = at(col.GetValues(), i)
			values[k].Value, values[k].Missing = v, at(col.GetMissing(), i)
			fs[col.GetName()] = &values[k]
			k++
		}
		sets[i] = &featurev1.FeatureSet{EntityId: id, Missing: at(c.GetMissing(), i), Features: fs}
	}
	return sets
}

// at is s[i], or the zero value past its end (a short column from a
// careless writer reads as defaults rather than panicking).
func at[T any](s []T, i int) T {
	var zero T
	if i < len(s) {
		return s[i]
	}
	return zero
}
