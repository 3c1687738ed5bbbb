package modelrt

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/recsys/recsys/libs/retrieval"
)

// Metadata is a model version's metadata.json: the contract between
// whatever trained the model and the ranking service. Any tool that writes
// it (and model.onnx beside it) can publish a model.
type Metadata struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Input is the model's one float input, shaped [batch, len(Features)];
	// Output its score output, shaped [batch] or [batch, 1].
	Input  string `json:"input_name"`
	Output string `json:"output_name"`
	// Features are the input columns, in order.
	Features []Feature `json:"features"`
	// Hashing is how id and text features become embedding rows.
	Hashing   Hashing            `json:"id_hashing"`
	Training  *TrainingSpan      `json:"training,omitempty"`
	Metrics   map[string]float64 `json:"metrics,omitempty"`
	CreatedAt time.Time          `json:"created_at"`

	planOnce sync.Once
	plan     []column

	namesOnce            sync.Once
	userNames, itemNames []string
	columnNames          []string
}

// Feature is one input column.
//
// Source names where the value comes from: "user.<feature>" or
// "item.<feature>" (a feature of the feature store), "user_id", "item_id",
// "item.category" (the item's first category),
// "user_item.category_affinity" (the user's affinity summed over the item's
// categories), "user_item.recent_click" (1 when the item is among the
// user's recent clicks) or "retrieval.<signal>" (a signal of the retrieval
// stage for the candidate, one of retrieval.Signals; the default when the
// version has no retrieval index or the candidate did not come from it).
type Feature struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	// Default is used when the value is missing.
	Default float32 `json:"default"`
	// Transform: "" (none), "log1p" (ln(1+max(x,0))) or "hash" (text and
	// ids: the bucket of Hashing, as a float).
	Transform string `json:"transform,omitempty"`
}

// Hashing maps ids to embedding rows: fnv1a64(salt + value) mod Buckets.
type Hashing struct {
	Salt    string `json:"salt"`
	Buckets int    `json:"buckets"`
}

// Bucket is the embedding row of value.
func (h Hashing) Bucket(value string) float32 {
	f := fnv.New64a()
	f.Write([]byte(h.Salt))
	f.Write([]byte(value))
	return float32(f.Sum64() % uint64(h.Buckets))
}

// TrainingSpan says what data trained the model.
type TrainingSpan struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	Rows int64     `json:"rows"`
}

// ReadMetadata reads and checks a metadata.json.
func ReadMetadata(path string) (*Metadata, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseMetadata(b)
}

// ParseMetadata parses and checks metadata; unknown fields are errors, so a
// typo does not silently become a default.
func ParseMetadata(b []byte) (*Metadata, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	m := &Metadata{}
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("metadata.json: %w", err)
	}
	return m, m.Validate()
}

// Validate reports every problem at once.
func (m *Metadata) Validate() error {
	var errs []error
	if m.Input == "" || m.Output == "" {
		errs = append(errs, errors.New("input_name and output_name are required"))
	}
	if len(m.Features) == 0 {
		errs = append(errs, errors.New("features: at least one is required"))
	}
	seen := map[string]bool{}
	for i, f := range m.Features {
		if f.Name == "" || seen[f.Name] {
			errs = append(errs, fmt.Errorf("features[%d]: name %q is empty or repeated", i, f.Name))
		}
		seen[f.Name] = true
		if !validSource(f.Source) {
			errs = append(errs, fmt.Errorf("features[%d] (%s): unknown source %q", i, f.Name, f.Source))
		}
		switch f.Transform {
		case "", "log1p":
		case "hash":
			if m.Hashing.Buckets <= 0 || m.Hashing.Buckets > 1<<24 {
				errs = append(errs, fmt.Errorf("features[%d] (%s): hash needs id_hashing.buckets in 1..%d", i, f.Name, 1<<24))
			}
		default:
			errs = append(errs, fmt.Errorf("features[%d] (%s): unknown transform %q (want log1p or hash)", i, f.Name, f.Transform))
		}
		if math.IsNaN(float64(f.Default)) || math.IsInf(float64(f.Default), 0) {
			errs = append(errs, fmt.Errorf("features[%d] (%s): default must be finite", i, f.Name))
		}
	}
	return errors.Join(errs...)
}

func validSource(s string) bool {
	switch s {
	case "user_id", "item_id", "item.category", "user_item.category_affinity", "user_item.recent_click":
		return true
	}
	if rest, ok := strings.CutPrefix(s, "retrieval."); ok {
		return slices.Contains(retrieval.Signals, rest)
	}
	for _, p := range []string{"user.", "item."} {
		if rest, ok := strings.CutPrefix(s, p); ok && rest != "" {
			return true
		}
	}
	return false
}

// FeatureNames are the feature-store features the model reads, by entity.
// They are computed once; the slices are shared, so append to them only
// (their capacity is their length: append copies).
func (m *Metadata) FeatureNames() (user, item []string) {
	m.derive()
	return m.userNames, m.itemNames
}

// ColumnNames are the features' names in input order (shared; do not
// modify).
func (m *Metadata) ColumnNames() []string {
	m.derive()
	return m.columnNames
}

func (m *Metadata) derive() {
	m.namesOnce.Do(func() {
		user, item := m.featureNames()
		m.userNames, m.itemNames = slices.Clip(user), slices.Clip(item)
		m.columnNames = make([]string, len(m.Features))
		for i, f := range m.Features {
			m.columnNames[i] = f.Name
		}
	})
}

func (m *Metadata) featureNames() (user, item []string) {
	add := func(list []string, name string) []string {
		for _, n := range list {
			if n == name {
				return list
			}
		}
		return append(list, name)
	}
	for _, f := range m.Features {
		switch {
		case f.Source == "item.category":
			item = add(item, "categories")
		case f.Source == "user_item.category_affinity":
			user = add(user, "category_affinity")
			item = add(item, "categories")
		case f.Source == "user_item.recent_click":
			user = add(user, "recent_clicks")
		case strings.HasPrefix(f.Source, "user."):
			user = add(user, strings.TrimPrefix(f.Source, "user."))
		case strings.HasPrefix(f.Source, "item."):
			item = add(item, strings.TrimPrefix(f.Source, "item."))
		}
	}
	return user, item
}
