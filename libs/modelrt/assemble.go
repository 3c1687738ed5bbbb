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
// are used. signals are the retrieval stage's per-candidate signals
// (signals[name][r] belongs to itemIDs[r]; nil or a missing name: the
// features' defaults). The user's part of each row is computed once.
func (m *Metadata) Rows(userID string, user *featurev1.FeatureSet, itemIDs []string, items []*featurev1.FeatureSet, signals map[string][]float32, dst []float32) []float32 {
	cols := m.columns()
	width := len(cols)
	dst = slices.Grow(dst[:0], len(itemIDs)*width)[:len(itemIDs)*width]
	// Columns that depend on the user alone are the same in every row;
	// retrieval columns read their signal's slice, looked up once.
	userCols := make([]float32, width)
	sigCols := make([][]float32, width)
	for c := range cols {
		col := &cols[c]
		switch {
		case col.userOnly():
			userCols[c] = m.value(col, userID, user, "", nil)
		case col.kind == colRetrieval:
			sigCols[c] = signals[col.name]
		}
	}
	var recent []string
	var aff map[string]float64
	if user != nil {
		recent = get(user, "recent_clicks").GetList().GetValues()
		aff = get(user, "category_affinity").GetWeights().GetWeights()
	}
	for r, id := range itemIDs {
		var it *featurev1.FeatureSet
		if r < len(items) {
			it = items[r]
		}
		row := dst[r*width : (r+1)*width]
		for c := range cols {
			col := &cols[c] // a pointer: a column is 80 bytes, read for every cell
			switch col.kind {
			case colUserNum, colUserText, colUserID:
				row[c] = userCols[c]
			case colRecent:
				row[c] = col.Default
				if len(recent) > 0 {
					row[c] = 0
					if slices.Contains(recent, id) {
						row[c] = 1
					}
				}
			case colRetrieval:
				row[c] = col.Default
				if v := sigCols[c]; r < len(v) {
					row[c] = m.transform(&col.Feature, float64(v[r]), "", false)
				}
			case colAffinity:
				row[c] = col.Default
				if cats := get(it, "categories").GetList().GetValues(); len(aff) > 0 && len(cats) > 0 {
					sum := 0.0
					for _, cat := range cats {
						sum += aff[cat]
					}
					row[c] = m.transform(&col.Feature, sum, "", false)
				}
			default:
				row[c] = m.value(col, userID, user, id, it)
			}
		}
	}
	return dst
}

// column is a Feature resolved once: which entity and feature it reads.
type column struct {
	Feature
	kind colKind
	name string // the feature-store feature read
}

type colKind int

const (
	colUserNum colKind = iota
	colItemNum
	colUserText // a user feature read as text (hash transform)
	colItemText
	colUserID
	colItemID
	colItemCategory
	colAffinity
	colRecent
	colRetrieval // name: the signal
)

func (c column) userOnly() bool {
	return c.kind == colUserNum || c.kind == colUserText || c.kind == colUserID
}

// columns resolves the features once per Metadata.
func (m *Metadata) columns() []column {
	m.planOnce.Do(func() {
		m.plan = make([]column, len(m.Features))
		for i, f := range m.Features {
			c := column{Feature: f}
			switch f.Source {
			case "user_id":
				c.kind = colUserID
			case "item_id":
				c.kind = colItemID
			case "item.category":
				c.kind = colItemCategory
			case "user_item.category_affinity":
				c.kind = colAffinity
			case "user_item.recent_click":
				c.kind = colRecent
			default:
				if sig, ok := strings.CutPrefix(f.Source, "retrieval."); ok {
					c.kind, c.name = colRetrieval, sig
					break
				}
				user := strings.HasPrefix(f.Source, "user.")
				c.name = strings.TrimPrefix(strings.TrimPrefix(f.Source, "user."), "item.")
				switch {
				case user && f.Transform == "hash":
					c.kind = colUserText
				case user:
					c.kind = colUserNum
				case f.Transform == "hash":
					c.kind = colItemText
				default:
					c.kind = colItemNum
				}
			}
			m.plan[i] = c
		}
	})
	return m.plan
}

// value is one cell of the columns that read one feature.
func (m *Metadata) value(c *column, userID string, user *featurev1.FeatureSet, itemID string, item *featurev1.FeatureSet) float32 {
	switch c.kind {
	case colUserID:
		return m.transform(&c.Feature, 0, userID, true)
	case colItemID:
		return m.transform(&c.Feature, 0, itemID, true)
	case colItemCategory:
		cats := get(item, "categories").GetList().GetValues()
		if len(cats) == 0 {
			return c.Default
		}
		return m.transform(&c.Feature, 0, cats[0], true)
	}
	set := item
	if c.kind == colUserNum || c.kind == colUserText {
		set = user
	}
	v := get(set, c.name)
	if v == nil || v.GetMissing() {
		return c.Default
	}
	switch x := v.GetValue().(type) {
	case *featurev1.Feature_Number:
		if c.Transform == "hash" {
			return m.Hashing.Bucket(strconv.FormatFloat(x.Number, 'g', -1, 64))
		}
		return m.transform(&c.Feature, x.Number, "", false)
	case *featurev1.Feature_Text:
		return m.transform(&c.Feature, 0, x.Text, true)
	}
	return c.Default
}

func (m *Metadata) transform(f *Feature, x float64, text string, isText bool) float32 {
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
