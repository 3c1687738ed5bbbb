package experiment

import (
	"math"
	"testing"
)

func TestWilson(t *testing.T) {
	for _, tc := range []struct {
		s, n      int64
		low, high float64
	}{
		// Reference values from the closed form (R: prop.test(..., correct=FALSE)$conf.int).
		{50, 100, 0.4038315, 0.5961685},
		{0, 10, 0, 0.2775328},
		{10, 10, 0.7224672, 1},
		{0, 0, 0, 0},
	} {
		low, high := Wilson(tc.s, tc.n)
		if math.Abs(low-tc.low) > 1e-6 || math.Abs(high-tc.high) > 1e-6 {
			t.Errorf("Wilson(%d, %d) = (%.7f, %.7f), want (%.7f, %.7f)", tc.s, tc.n, low, high, tc.low, tc.high)
		}
	}
}

func TestTwoProportionP(t *testing.T) {
	for _, tc := range []struct {
		sa, na, sb, nb int64
		want           float64
	}{
		// R: prop.test(c(60, 40), c(100, 100), correct=FALSE)$p.value
		{60, 100, 40, 100, 0.004677735},
		{50, 100, 50, 100, 1},
		{1, 0, 1, 10, 1},
	} {
		if got := TwoProportionP(tc.sa, tc.na, tc.sb, tc.nb); math.Abs(got-tc.want) > 1e-6 {
			t.Errorf("TwoProportionP(%d/%d vs %d/%d) = %.9f, want %.9f", tc.sa, tc.na, tc.sb, tc.nb, got, tc.want)
		}
	}
}
