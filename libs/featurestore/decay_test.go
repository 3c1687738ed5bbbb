package featurestore

import (
	"math"
	"testing"
	"time"
)

func TestDecayClosedForm(t *testing.T) {
	hl := time.Hour
	for _, tc := range []struct {
		name string
		c    Counter
		at   time.Time
		want float64
	}{
		{"no time passed", Counter{4, t0}, t0, 4},
		{"one half-life halves", Counter{4, t0}, t0.Add(hl), 2},
		{"two half-lives quarter", Counter{4, t0}, t0.Add(2 * hl), 1},
		{"half a half-life", Counter{1, t0}, t0.Add(hl / 2), 1 / math.Sqrt2},
		{"reads before the stamp do not grow", Counter{4, t0}, t0.Add(-hl), 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.ValueAt(tc.at, hl); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("%+v.ValueAt(+%s) = %v, want %v", tc.c, tc.at.Sub(t0), got, tc.want)
			}
		})
	}
	// Adding out of order gives the same pair.
	a := Counter{}.Add(1, t0, hl).Add(1, t0.Add(hl), hl)
	b := Counter{}.Add(1, t0.Add(hl), hl).Add(1, t0, hl)
	if a.at != b.at || math.Abs(a.value-b.value) > 1e-12 || math.Abs(a.value-1.5) > 1e-12 {
		t.Errorf("add in order = %+v, out of order = %+v; want both 1.5 at t0+1h", a, b)
	}
	if c, ok := decodeCounter(encodeCounter(a)); !ok || c.value != a.value || !c.at.Equal(a.at) {
		t.Errorf("decode(encode(%+v)) = %+v, %v", a, c, ok)
	}
}

func TestTrendingScores(t *testing.T) {
	// One unit of weight a half-life ago reads 0.5; two events sum.
	s := trendingLogWeight(1, t0)
	if got := trendingValue(s, t0.Add(TrendingHalfLife)); math.Abs(got-0.5) > 1e-9 {
		t.Errorf("trending after one half-life = %v, want 0.5", got)
	}
	sum := logAdd2(trendingLogWeight(1, t0), trendingLogWeight(3, t0))
	if got := trendingValue(sum, t0); math.Abs(got-4) > 1e-9 {
		t.Errorf("1 + 3 at the same time = %v, want 4", got)
	}
}
