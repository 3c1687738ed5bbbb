package evaluation

import (
	"fmt"
	"math"
	"testing"
)

// Item indices below are positions in the catalogue i00, i01, ...; in the
// hand-computed cases the scorer gives item i the score nItems-i, so the
// ranking is by index, and the training items (scored highest) must drop out.

// relevant returns relevant events on items, one per time step.
func relevant(items ...int32) []Event { return events(true, items) }

// irrelevant returns non-relevant events on items, one per time step.
func irrelevant(items ...int32) []Event { return events(false, items) }

func events(rel bool, items []int32) []Event {
	out := make([]Event, len(items))
	for t, i := range items {
		out[t] = Event{Item: i, Time: int64(t), Relevant: rel}
	}
	return out
}

// catalogue builds a Data over items i00..i(nItems-1) and users u0, u1, ...
func catalogue(nItems int, byUser ...[]Event) *Data {
	d := &Data{ItemIndex: map[string]int32{}, ByUser: byUser}
	for i := range nItems {
		id := fmt.Sprintf("i%02d", i)
		d.Items = append(d.Items, id)
		d.ItemIndex[id] = int32(i)
	}
	for u := range byUser {
		d.Users = append(d.Users, fmt.Sprintf("u%d", u))
	}
	return d
}

// descending scores item i as n-i for every user.
func descending(_ int, _ []Event, scores []float32) {
	for i := range scores {
		scores[i] = float32(len(scores) - i)
	}
}

// fixed gives every user the same scores; unset entries stay -Inf.
func fixed(set map[int32]float32) Scorer {
	return func(_ int, _ []Event, scores []float32) {
		for i, s := range set {
			scores[i] = s
		}
	}
}

// gain is 1/log2(rank+1), the DCG gain of a hit at rank.
func gain(rank int) float64 { return 1 / math.Log2(float64(rank+1)) }

func TestEvaluate(t *testing.T) {
	nan := float32(math.NaN())
	negInf := float32(math.Inf(-1))
	tests := []struct {
		name        string
		nItems      int
		train, test [][]Event
		score       Scorer
		want        Metrics
	}{
		{
			// Candidates i01..i11 (i00 is training, scored highest): hits at
			// ranks 3 (i03) and 5 (i05). AUC: 9 negatives; i03 (score 9) is
			// above 7 of them (i04, i06..i11), i05 above 6: (7+6)/(2·9).
			// Top 10 = i01..i10: 10 of 12 items.
			name:   "hits at ranks 3 and 5",
			nItems: 12,
			train:  [][]Event{relevant(0)},
			test:   [][]Event{relevant(3, 5)},
			score:  descending,
			want: Metrics{
				NDCG10:   (gain(3) + gain(5)) / (gain(1) + gain(2)),
				Recall10: 1, MRR10: 1.0 / 3, Coverage: 10.0 / 12, AUC: 13.0 / 18, Users: 1,
			},
		},
		{
			// i01 at rank 1, i11 at rank 11 (outside the top 10).
			// AUC: i01 above all 9 negatives, i11 above none: 9/18.
			name:   "hit beyond the top 10",
			nItems: 12,
			train:  [][]Event{relevant(0)},
			test:   [][]Event{relevant(1, 11)},
			score:  descending,
			want: Metrics{
				NDCG10:   gain(1) / (gain(1) + gain(2)),
				Recall10: 0.5, MRR10: 1, Coverage: 10.0 / 12, AUC: 0.5, Users: 1,
			},
		},
		{
			// Scores i01..i05 = 3, 2, 2, 2, 1: ranking by index, hits at 2
			// (i02, ahead of the equal i03 and i04) and 5. AUC: negatives
			// i01 (3), i03 (2), i04 (2). i02 (2) is above none and tied with
			// two: 2·½ = 1; i05 (1) above none: 1/(2·3).
			name:   "ties broken by index and counted half in AUC",
			nItems: 6,
			train:  [][]Event{relevant(0)},
			test:   [][]Event{relevant(2, 5)},
			score:  fixed(map[int32]float32{0: 10, 1: 3, 2: 2, 3: 2, 4: 2, 5: 1}),
			want: Metrics{
				NDCG10:   (gain(2) + gain(5)) / (gain(1) + gain(2)),
				Recall10: 1, MRR10: 0.5, Coverage: 5.0 / 6, AUC: 1.0 / 6, Users: 1,
			},
		},
		{
			// i00 is scored first but is training, so it is neither ranked
			// nor a target: rel = {i04}, at rank 4 among 11 candidates,
			// above 7 of the 10 negatives.
			name:   "training item scored first is neither credited nor charged",
			nItems: 12,
			train:  [][]Event{relevant(0)},
			test:   [][]Event{relevant(0, 4)},
			score:  descending,
			want: Metrics{
				NDCG10: gain(4), Recall10: 1, MRR10: 0.25, Coverage: 10.0 / 12, AUC: 0.7, Users: 1,
			},
		},
		{
			// rel = {i01} however many events: one hit of one, at rank 1.
			name:   "duplicate test events count once",
			nItems: 12,
			train:  [][]Event{relevant(0)},
			test:   [][]Event{relevant(1, 1, 1)},
			score:  descending,
			want:   Metrics{NDCG10: 1, Recall10: 1, MRR10: 1, Coverage: 10.0 / 12, AUC: 1, Users: 1},
		},
		{
			// i01 is a test item but not relevant: a negative at rank 1.
			// i02 at rank 2 is above 9 of the 10 negatives.
			name:   "non-relevant test items are negatives",
			nItems: 12,
			train:  [][]Event{relevant(0)},
			test:   [][]Event{append(irrelevant(1), relevant(2)...)},
			score:  descending,
			want: Metrics{
				NDCG10: gain(2), Recall10: 1, MRR10: 0.5, Coverage: 10.0 / 12, AUC: 0.9, Users: 1,
			},
		},
		{
			// u1 has only a non-relevant test event and u2 none: only u0
			// counts, so this is the first case again.
			name:   "users without relevant test items are skipped",
			nItems: 12,
			train:  [][]Event{relevant(0), relevant(0), relevant(0)},
			test:   [][]Event{relevant(3, 5), irrelevant(1, 2), nil},
			score:  descending,
			want: Metrics{
				NDCG10:   (gain(3) + gain(5)) / (gain(1) + gain(2)),
				Recall10: 1, MRR10: 1.0 / 3, Coverage: 10.0 / 12, AUC: 13.0 / 18, Users: 1,
			},
		},
		{
			// u0: i01 at rank 1 of 11: NDCG 1, Recall 1, MRR 1, AUC 1.
			// u1 (trained on i01): ranking i00, i02, i03, ...: i03 at rank 3,
			// i11 at rank 11; AUC: 9 negatives, i03 above 7 (i04..i10), i11
			// above none: 7/18. Top 10s: i01..i10 and i00, i02..i10: 11 of 12.
			name:   "means over users",
			nItems: 12,
			train:  [][]Event{relevant(0), relevant(1)},
			test:   [][]Event{relevant(1), relevant(3, 11)},
			score:  descending,
			want: Metrics{
				NDCG10:   (1 + gain(3)/(gain(1)+gain(2))) / 2,
				Recall10: (1 + 0.5) / 2, MRR10: (1 + 1.0/3) / 2, Coverage: 11.0 / 12,
				AUC: (1 + 7.0/18) / 2, Users: 2,
			},
		},
		{
			// Only i01 is scored, so the top 10 is [i01]: no hit. AUC: the
			// positives i05 (-Inf) and i07 (NaN, so -Inf) each tie with the 8
			// unscored negatives and lose to i01: (4+4)/(2·9).
			name:   "unscored items are not recommended",
			nItems: 12,
			train:  [][]Event{relevant(0)},
			test:   [][]Event{relevant(5, 7)},
			score:  fixed(map[int32]float32{0: 5, 1: 1, 5: negInf, 7: nan}),
			want:   Metrics{Coverage: 1.0 / 12, AUC: 4.0 / 9, Users: 1},
		},
		{
			// Every candidate is relevant: no negative, so no AUC.
			name:   "no negatives",
			nItems: 3,
			train:  [][]Event{relevant(0)},
			test:   [][]Event{relevant(2, 1)},
			score:  descending,
			want:   Metrics{NDCG10: 1, Recall10: 1, MRR10: 1, Coverage: 2.0 / 3, Users: 1},
		},
		{
			name:   "no user to evaluate",
			nItems: 3,
			train:  [][]Event{relevant(0)},
			test:   [][]Event{irrelevant(1)},
			score:  descending,
			want:   Metrics{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			train, test := catalogue(tt.nItems, tt.train...), catalogue(tt.nItems, tt.test...)
			if got := Evaluate(train, test, tt.score); !metricsNear(got, tt.want, 1e-12) {
				t.Errorf("Evaluate(...) = %v, want %v", got, tt.want)
			}
		})
	}
}

func metricsNear(a, b Metrics, tol float64) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) <= tol }
	return a.Users == b.Users && near(a.NDCG10, b.NDCG10) && near(a.Recall10, b.Recall10) &&
		near(a.MRR10, b.MRR10) && near(a.Coverage, b.Coverage) && near(a.AUC, b.AUC)
}

// The scorer sees the user's training events, and scores arrive as -Inf.
func TestEvaluateScorerArguments(t *testing.T) {
	train := catalogue(4, relevant(2), relevant(1, 3))
	test := catalogue(4, relevant(0), relevant(0))
	var calls []string
	Evaluate(train, test, func(u int, history []Event, scores []float32) {
		for i, s := range scores {
			if !math.IsInf(float64(s), -1) {
				t.Errorf("user %d: scores[%d] = %v on entry, want -Inf", u, i, s)
			}
		}
		calls = append(calls, fmt.Sprint(u, history))
	})
	want := []string{fmt.Sprint(0, relevant(2)), fmt.Sprint(1, relevant(1, 3))}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Errorf("scorer calls = %v, want %v", calls, want)
	}
}

func TestPopularity(t *testing.T) {
	// i00: 3 events (one not relevant, two by the same user); i02: 1; i01, i03: 0.
	train := catalogue(4, append(relevant(0, 0), irrelevant(2)...), irrelevant(0))
	scores := make([]float32, 4)
	Popularity(train)(0, nil, scores)
	if want := []float32{3, 0, 1, 0}; fmt.Sprint(scores) != fmt.Sprint(want) {
		t.Errorf("Popularity scores = %v, want %v", scores, want)
	}
}
