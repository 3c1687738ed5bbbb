// Package experiment holds A/B experiments: the statistics of their reports
// (Wilson intervals, two-proportion z-tests).
package experiment

import "math"

// z95 is the two-sided 95% normal quantile.
const z95 = 1.959963984540054

// Wilson returns the 95% Wilson score interval of a proportion of
// successes in trials; (0, 0) when there are no trials.
func Wilson(successes, trials int64) (low, high float64) {
	if trials <= 0 {
		return 0, 0
	}
	n := float64(trials)
	p := float64(successes) / n
	z2 := z95 * z95
	center := (p + z2/(2*n)) / (1 + z2/n)
	half := z95 / (1 + z2/n) * math.Sqrt(p*(1-p)/n+z2/(4*n*n))
	return math.Max(0, center-half), math.Min(1, center+half)
}

// TwoProportionP is the two-sided p-value of a pooled two-proportion z-test
// of a against b; 1 when either has no trials or nothing varies.
func TwoProportionP(successesA, trialsA, successesB, trialsB int64) float64 {
	if trialsA <= 0 || trialsB <= 0 {
		return 1
	}
	na, nb := float64(trialsA), float64(trialsB)
	pa, pb := float64(successesA)/na, float64(successesB)/nb
	pool := float64(successesA+successesB) / (na + nb)
	se := math.Sqrt(pool * (1 - pool) * (1/na + 1/nb))
	if se == 0 {
		return 1
	}
	z := math.Abs(pa-pb) / se
	return math.Erfc(z / math.Sqrt2)
}
