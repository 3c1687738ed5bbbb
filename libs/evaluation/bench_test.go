package evaluation

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// syntheticData is a MovieLens-shaped world built directly (NewData is not
// what is measured): popularity-skewed items, perUser events per user on
// average, some repeated.
func syntheticData(users, items, perUser int) *Data {
	rng := rand.New(rand.NewPCG(1, 5))
	d := &Data{ItemIndex: make(map[string]int32, items), ByUser: make([][]Event, users)}
	for i := range items {
		id := fmt.Sprintf("i%05d", i)
		d.Items = append(d.Items, id)
		d.ItemIndex[id] = int32(i)
	}
	for u := range users {
		d.Users = append(d.Users, fmt.Sprintf("u%05d", u))
		n := 1 + rng.IntN(2*perUser)
		evs := make([]Event, n)
		for k := range evs {
			evs[k] = Event{Item: int32(float64(items) * math.Pow(rng.Float64(), 2)), Time: int64(k), Relevant: rng.IntN(5) > 0}
		}
		d.ByUser[u] = evs
	}
	return d
}

// BenchmarkEASE factorises and inverts a 2000×2000 Gram matrix.
func BenchmarkEASE(b *testing.B) {
	d := syntheticData(5000, 2000, 60)
	for b.Loop() {
		if _, err := EASE(d, 100, 100, 2000); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluate is a full-catalogue evaluation at MovieLens-1M size
// (6000 users, 4000 items, about 1M events).
func BenchmarkEvaluate(b *testing.B) {
	train, test := syntheticData(6000, 4000, 170).Split(0.2)
	for _, s := range []struct {
		name  string
		score func() Scorer
	}{
		{"Popularity", func() Scorer { return Popularity(train) }},
		{"ItemKNN50", func() Scorer { return ItemKNN(train, 50).Scorer() }},
	} {
		score := s.score()
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				Evaluate(train, test, score)
			}
		})
	}
}
