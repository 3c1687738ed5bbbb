package experiment

// CUPED (Deng, Xu, Kohavi and Walker, "Improving the Sensitivity of Online
// Controlled Experiments by Utilizing Pre-Experiment Data", 2013) for a
// ratio metric. The covariate is each user's pre-experiment clicks and
// impressions, z = (c, m), captured at their first exposure, so the
// treatment cannot have moved it and its mean is the same in every arm.
// Each arm's CTR R̂ = ȳ/x̄ is adjusted by the deviation of its covariate
// means from their pooled mean μ:
//
//	R̂cv = R̂ − θᵀ(z̄ − μ)
//
// with θ = (Σ Var(z̄))⁻¹ Σ Cov(z̄, R̂) summed over the compared arms (the θ
// that minimises the variance of the difference), the covariances from
// the users' sample covariance matrix and the delta method's gradient of
// R̂. Then Var(R̂cv) = Var(R̂) − 2θᵀCov(z̄, R̂) + θᵀVar(z̄)θ. The adjusted
// estimates are unbiased however weak the correlation; the stronger it
// is, the smaller their variance.

// cupedTerms are one arm's pieces of the adjustment.
type cupedTerms struct {
	r     Estimate
	zbar  [2]float64
	varZ  [2][2]float64 // Var(z̄)
	covZR [2]float64    // Cov(z̄, R̂)
}

func (s means) cupedTerms() cupedTerms {
	r, g := s.ratioGradient(clicks, impressions)
	t := cupedTerms{r: Estimate{r, s.quad(g, g)}}
	z := [2]int{preClicks, preImpressions}
	for a, j := range z {
		t.zbar[a] = s.mu[j]
		for b, k := range z {
			t.varZ[a][b] = s.cov[j][k]
		}
		var e [4]float64
		e[j] = 1
		t.covZR[a] = s.quad(e, g)
	}
	return t
}

// theta solves A θ = b for the 2×2 symmetric A; when A is (nearly)
// singular — a covariate that does not vary, or one proportional to the
// other — it regresses on the one covariate that explains more.
func theta(A [2][2]float64, b [2]float64) [2]float64 {
	det := A[0][0]*A[1][1] - A[0][1]*A[1][0]
	if det > 1e-9*A[0][0]*A[1][1] && det > 0 {
		return [2]float64{(A[1][1]*b[0] - A[0][1]*b[1]) / det, (A[0][0]*b[1] - A[1][0]*b[0]) / det}
	}
	var th [2]float64
	best := 0.0
	for k := range 2 {
		if A[k][k] > 0 {
			if r2 := b[k] * b[k] / A[k][k]; r2 > best {
				th, best = [2]float64{}, r2
				th[k] = b[k] / A[k][k]
			}
		}
	}
	return th
}

// CUPED returns the arms' CTRs adjusted by their users' pre-experiment
// clicks and impressions, with one θ for all of them; false when an arm
// has too few users to estimate a variance.
func CUPED(arms ...Moments) ([]Estimate, bool) {
	terms := make([]cupedTerms, len(arms))
	var pooled Moments
	var A [2][2]float64
	var b [2]float64
	for i, m := range arms {
		s, ok := m.means()
		if !ok {
			return nil, false
		}
		terms[i] = s.cupedTerms()
		pooled = pooled.Merge(m)
		for a := range 2 {
			b[a] += terms[i].covZR[a]
			for c := range 2 {
				A[a][c] += terms[i].varZ[a][c]
			}
		}
	}
	th := theta(A, b)
	mu := [2]float64{pooled.Sum[preClicks] / float64(pooled.Users), pooled.Sum[preImpressions] / float64(pooled.Users)}
	out := make([]Estimate, len(arms))
	for i, t := range terms {
		v := t.r.Var
		for a := range 2 {
			v -= 2 * th[a] * t.covZR[a]
			for c := range 2 {
				v += th[a] * t.varZ[a][c] * th[c]
			}
		}
		out[i] = Estimate{t.r.Value - th[0]*(t.zbar[0]-mu[0]) - th[1]*(t.zbar[1]-mu[1]), max(v, 0)}
	}
	return out, true
}
