package featureservice

import (
	"maps"
	"slices"

	featurev1 "github.com/recsys/recsys/gen/go/recsys/feature/v1"
)

// Columns lays sets out column by column (docs/architecture.md,
// "Features": the columnar answer). The columns are those of the first
// set; every set of one read carries the same features (the store fills
// defaults). Weights have no column: no item feature is one, and only
// item reads are columnar.
func Columns(sets []*featurev1.FeatureSet) *featurev1.FeatureColumns {
	out := &featurev1.FeatureColumns{EntityIds: make([]string, len(sets)), Missing: make([]bool, len(sets))}
	if len(sets) == 0 {
		return out
	}
	n := len(sets)
	numbers := map[string]*featurev1.NumberColumn{}
	texts := map[string]*featurev1.TextColumn{}
	lists := map[string]*featurev1.ListColumn{}
	for name, f := range sets[0].GetFeatures() {
		switch f.GetValue().(type) {
		case *featurev1.Feature_Number:
			numbers[name] = &featurev1.NumberColumn{Name: name, Values: make([]float64, n)}
		case *featurev1.Feature_Text:
			texts[name] = &featurev1.TextColumn{Name: name, Values: make([]string, n)}
		case *featurev1.Feature_List:
			lists[name] = &featurev1.ListColumn{Name: name, Values: make([]*featurev1.StringList, n)}
		}
	}
	for i, s := range sets {
		out.EntityIds[i], out.Missing[i] = s.GetEntityId(), s.GetMissing()
		fs := s.GetFeatures()
		for name, c := range numbers {
			c.Values[i] = fs[name].GetNumber()
			c.Missing = markMissing(c.Missing, i, n, fs[name])
		}
		for name, c := range texts {
			c.Values[i] = fs[name].GetText()
			c.Missing = markMissing(c.Missing, i, n, fs[name])
		}
		for name, c := range lists {
			l := fs[name].GetList()
			if l == nil {
				l = &featurev1.StringList{}
			}
			c.Values[i] = l
			c.Missing = markMissing(c.Missing, i, n, fs[name])
		}
	}
	for _, name := range slices.Sorted(maps.Keys(numbers)) {
		out.Numbers = append(out.Numbers, numbers[name])
	}
	for _, name := range slices.Sorted(maps.Keys(texts)) {
		out.Texts = append(out.Texts, texts[name])
	}
	for _, name := range slices.Sorted(maps.Keys(lists)) {
		out.Lists = append(out.Lists, lists[name])
	}
	return out
}

// markMissing records that entity i's value f is a default in a column's
// missing flags, made (n long) at the first such value.
func markMissing(flags []bool, i, n int, f *featurev1.Feature) []bool {
	if f == nil || f.GetMissing() {
		if flags == nil {
			flags = make([]bool, n)
		}
		flags[i] = true
	}
	return flags
}

// Sets is the inverse of Columns: one FeatureSet per entity, with each
// value's missing flag. Features come without their age, which columns do
// not carry.
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
