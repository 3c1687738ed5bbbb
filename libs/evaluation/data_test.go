package evaluation

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func TestNewData(t *testing.T) {
	in := []Interaction{
		{User: "bob", Item: "b", Time: at(5), Relevant: true},
		{User: "ann", Item: "c", Time: at(2)},
		{User: "bob", Item: "a", Time: at(5)}, // same instant as b: a first
		{User: "ann", Item: "c", Time: at(1), Relevant: true},
		{User: "bob", Item: "b", Time: at(5)}, // duplicate of b, not relevant: before the relevant one
		{User: "bob", Item: "a", Time: at(3).Add(400 * time.Microsecond)},
	}
	got := NewData(in, []string{"z", "a"})
	ms := t0.UnixMilli()
	want := &Data{
		Users:     []string{"ann", "bob"},
		Items:     []string{"a", "b", "c", "z"},
		ItemIndex: map[string]int32{"a": 0, "b": 1, "c": 2, "z": 3},
		ByUser: [][]Event{
			{{Item: 2, Time: ms + 1, Relevant: true}, {Item: 2, Time: ms + 2}},
			{{Item: 0, Time: ms + 3}, {Item: 0, Time: ms + 5}, {Item: 1, Time: ms + 5}, {Item: 1, Time: ms + 5, Relevant: true}},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("NewData(...) mismatch (-want +got):\n%s", diff)
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		frac      float64
		wantTrain int
	}{
		{"1 event stays in train", 1, 0.2, 1},
		{"2 events split 1/1", 2, 0.2, 1},
		{"5 events at 0.2 split 4/1", 5, 0.2, 4},
		{"10 events at 0.2 split 8/2", 10, 0.2, 8},
		{"3 events at 0.5 round 1.5 up to 2 test", 3, 0.5, 1},
		{"frac 0 still tests one", 4, 0, 3},
		{"frac 1 keeps one in train", 4, 1, 1},
		{"no events", 0, 0.2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in []Interaction
			for k := range tt.n {
				// Items named against time order so index order differs from time order.
				in = append(in, Interaction{User: "u", Item: fmt.Sprintf("i%02d", 99-k), Time: at(k), Relevant: true})
			}
			d := NewData(in, []string{"extra"})
			if tt.n == 0 {
				d.Users, d.ByUser = []string{"u"}, [][]Event{nil}
			}
			train, test := d.Split(tt.frac)
			all := d.ByUser[0]
			if got, want := train.ByUser[0], all[:tt.wantTrain]; !slices.Equal(got, want) {
				t.Errorf("Split(%v) train = %v, want %v", tt.frac, got, want)
			}
			if got, want := test.ByUser[0], all[tt.wantTrain:]; !slices.Equal(got, want) {
				t.Errorf("Split(%v) test = %v, want %v", tt.frac, got, want)
			}
			if &train.Items[0] != &d.Items[0] || &test.Users[0] != &d.Users[0] {
				t.Errorf("Split(%v) does not share Items and Users with its Data", tt.frac)
			}
		})
	}
}

func TestSplitTiesByItemIndex(t *testing.T) {
	in := []Interaction{
		{User: "u", Item: "c", Time: at(7)},
		{User: "u", Item: "a", Time: at(7)},
		{User: "u", Item: "d", Time: at(1)},
		{User: "u", Item: "b", Time: at(7)},
	}
	train, test := NewData(in, nil).Split(0.5)
	name := func(d *Data) (out []string) {
		for _, e := range d.ByUser[0] {
			out = append(out, d.Items[e.Item])
		}
		return out
	}
	if got, want := name(train), []string{"d", "a"}; !slices.Equal(got, want) {
		t.Errorf("Split(0.5) train = %v, want %v", got, want)
	}
	if got, want := name(test), []string{"b", "c"}; !slices.Equal(got, want) {
		t.Errorf("Split(0.5) test = %v, want %v", got, want)
	}
}

// randomInteractions draws a small world with repeated events, ties in time
// and relevant and non-relevant events on the same pair.
func randomInteractions(seed uint64, users, items, events int) []Interaction {
	rng := rand.New(rand.NewPCG(seed, 1))
	in := make([]Interaction, events)
	for k := range in {
		in[k] = Interaction{
			User:     fmt.Sprintf("u%03d", rng.IntN(users)),
			Item:     fmt.Sprintf("i%03d", rng.IntN(items)),
			Time:     at(rng.IntN(events / 4)),
			Relevant: rng.IntN(3) > 0,
		}
	}
	return in
}

func TestDeterminism(t *testing.T) {
	in := randomInteractions(7, 40, 30, 600)
	shuffled := slices.Clone(in)
	rand.New(rand.NewPCG(99, 0)).Shuffle(len(shuffled), func(a, b int) {
		shuffled[a], shuffled[b] = shuffled[b], shuffled[a]
	})
	cat := []string{"i900", "i000"}
	d1, d2 := NewData(in, cat), NewData(shuffled, cat)
	if diff := cmp.Diff(d1, d2); diff != "" {
		t.Fatalf("NewData of shuffled input differs (-in order +shuffled):\n%s", diff)
	}

	scorers := []struct {
		name string
		make func(train *Data) Scorer
	}{
		{"Popularity", Popularity},
		{"ItemKNN", func(train *Data) Scorer { return ItemKNN(train, 5).Scorer() }},
		{"EASE", func(train *Data) Scorer {
			m, err := EASE(train, 10, 0, 20)
			if err != nil {
				t.Fatalf("EASE: %v", err)
			}
			return m.Scorer()
		}},
		{"PureSVD", func(train *Data) Scorer { return EmbeddingScorer(PureSVD(train, 4, 10, 3), 4) }},
	}
	for _, s := range scorers {
		t.Run(s.name, func(t *testing.T) {
			var runs []Metrics
			for _, d := range []*Data{d1, d2, d1} {
				train, test := d.Split(0.3)
				runs = append(runs, Evaluate(train, test, s.make(train)))
			}
			if runs[0].Users == 0 {
				t.Fatalf("Evaluate(...) evaluated no user")
			}
			if runs[1] != runs[0] || runs[2] != runs[0] {
				t.Errorf("Evaluate(...) = %v (shuffled), %v (again), want %v", runs[1], runs[2], runs[0])
			}
		})
	}
}
