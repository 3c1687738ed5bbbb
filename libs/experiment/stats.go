// Package experiment holds A/B experiments: sticky assignment of users to
// arms, and the statistics of their reports.
//
// The unit of randomisation is the user, so the unit of analysis is the
// user too: an arm's CTR is the ratio of two per-user means (clicks and
// impressions), and its variance comes from the spread of the users'
// counts by the delta method. Impressions of one user are correlated (the
// same tastes, the same sessions), so counting each impression as an
// independent trial understates the variance, by a factor that grows with
// impressions per user.
package experiment

import (
	"math"

	"github.com/recsys/recsys/libs/featurestore"
)

// Alpha is the significance level of every interval and flag in a report.
const Alpha = 0.05

// z95 is the two-sided 95% normal quantile.
const z95 = 1.959963984540054

// The per-user quantities of Moments, in the order of its arrays.
const (
	clicks         = featurestore.SumClicks
	impressions    = featurestore.SumImpressions
	preClicks      = featurestore.SumPreClicks
	preImpressions = featurestore.SumPreImpressions
)

// Moments are the sufficient statistics of an arm's users: their number,
// and over them the sums and the sums of products of each user's clicks,
// impressions, and pre-experiment clicks and impressions. The feature
// store keeps them up to date event by event (featurestore.UserSums).
type Moments featurestore.UserSums

// Add adds one user.
func (m *Moments) Add(clicks, impressions, preClicks, preImpressions float64) {
	v := [4]float64{clicks, impressions, preClicks, preImpressions}
	m.Users++
	for j := range v {
		m.Sum[j] += v[j]
		for k := range v {
			m.Prod[j][k] += v[j] * v[k]
		}
	}
}

// Merge adds another arm's users (the pooled arm of a comparison).
func (m Moments) Merge(o Moments) Moments {
	m.Users += o.Users
	for j := range m.Sum {
		m.Sum[j] += o.Sum[j]
		for k := range m.Sum {
			m.Prod[j][k] += o.Prod[j][k]
		}
	}
	return m
}

// means are the per-user means of an arm and their covariance matrix: the
// users' sample covariance over their number.
type means struct {
	n   float64
	mu  [4]float64
	cov [4][4]float64
}

// means is false when the arm has fewer than two users or no impression:
// no variance can be estimated.
func (m Moments) means() (means, bool) {
	n := float64(m.Users)
	if n < 2 || m.Sum[impressions] <= 0 {
		return means{}, false
	}
	s := means{n: n}
	for j := range s.mu {
		s.mu[j] = m.Sum[j] / n
	}
	for j := range s.mu {
		for k := range s.mu {
			s.cov[j][k] = (m.Prod[j][k] - n*s.mu[j]*s.mu[k]) / (n - 1) / n
		}
	}
	return s, true
}

// Estimate is a point estimate and the variance of its sampling
// distribution.
type Estimate struct {
	Value, Var float64
}

// SE is the standard error.
func (e Estimate) SE() float64 { return math.Sqrt(e.Var) }

// Interval is the two-sided 95% normal interval.
func (e Estimate) Interval() (low, high float64) {
	h := z95 * e.SE()
	return e.Value - h, e.Value + h
}

// P is the two-sided p-value of Value = 0 under the normal
// approximation; 1 when nothing varies.
func (e Estimate) P() float64 {
	if !(e.Var > 0) {
		return 1
	}
	return math.Erfc(math.Abs(e.Value) / e.SE() / math.Sqrt2)
}

// gradient of the ratio mu[num]/mu[den] with respect to the four means.
func (s means) ratioGradient(num, den int) (r float64, g [4]float64) {
	r = s.mu[num] / s.mu[den]
	g[num] = 1 / s.mu[den]
	g[den] = -r / s.mu[den]
	return r, g
}

// quad is aᵀ cov b.
func (s means) quad(a, b [4]float64) float64 {
	q := 0.0
	for j := range a {
		for k := range b {
			q += a[j] * s.cov[j][k] * b[k]
		}
	}
	return q
}

// CTR is the arm's clicks over impressions as a ratio of per-user means,
// with its delta-method variance:
//
//	Var(ȳ/x̄) ≈ (Var(ȳ) − 2R·Cov(ȳ, x̄) + R²·Var(x̄)) / x̄²,  R = ȳ/x̄
//
// false when the arm has fewer than two users or no impression.
func (m Moments) CTR() (Estimate, bool) {
	s, ok := m.means()
	if !ok {
		return Estimate{}, false
	}
	r, g := s.ratioGradient(clicks, impressions)
	return Estimate{r, s.quad(g, g)}, true
}

// Lift is the relative difference t/c − 1 of two independent estimates
// (arms), with its delta-method variance:
//
//	Var(t/c) ≈ Var(t)/c² + t²·Var(c)/c⁴
func Lift(t, c Estimate) Estimate {
	if c.Value == 0 {
		return Estimate{}
	}
	return Estimate{t.Value/c.Value - 1, t.Var/(c.Value*c.Value) + t.Value*t.Value*c.Var/math.Pow(c.Value, 4)}
}

// MixtureSD is the standard deviation τ of the normal mixture over lifts
// that the sequential test averages its likelihood ratio over: it is most
// sensitive to lifts of about this size (±10%).
const MixtureSD = 0.1

// Sequential is the mixture sequential probability ratio test (mSPRT,
// Johari, Pekelis and Walsh, "Always Valid Inference", 2017) of e.Value =
// 0 for a normal estimate, with a N(0, τ²) mixture over the true value:
// the mixture likelihood ratio is
//
//	Λ = √(V/(V+τ²)) · exp(e²τ² / (2V(V+τ²))),  V = e.Var
//
// and p = min(1, 1/Λ). Under the null, Λ is a martingale, so by Ville's
// inequality the chance that p ever falls to α, however often it is read,
// is at most α. The confidence sequence is the set of values the same test
// does not reject at level Alpha: e ± √(V(V+τ²)/τ² · (log((V+τ²)/V) + 2·log(1/α))).
// Reported afresh at each reading (not the running minimum, which needs
// state): stopping the first time p ≤ α keeps the guarantee.
func Sequential(e Estimate, tau float64) (p, low, high float64) {
	v, t2 := e.Var, tau*tau
	if !(v > 0) {
		return 1, e.Value, e.Value
	}
	logLR := 0.5*math.Log(v/(v+t2)) + e.Value*e.Value*t2/(2*v*(v+t2))
	p = math.Min(1, math.Exp(-logLR))
	half := math.Sqrt(v * (v + t2) / t2 * (math.Log((v+t2)/v) + 2*math.Log(1/Alpha)))
	return p, e.Value - half, e.Value + half
}

// ChiSquareP is the upper tail probability of the chi-square distribution
// with df degrees of freedom at x: the regularised upper incomplete gamma
// function Q(df/2, x/2).
func ChiSquareP(x float64, df int) float64 {
	if df <= 0 {
		return 1
	}
	if x <= 0 {
		return 1
	}
	return gammaQ(float64(df)/2, x/2)
}

// gammaQ is the regularised upper incomplete gamma function Q(a, x): by
// its series for x < a+1 and its continued fraction otherwise (Numerical
// Recipes, §6.2).
func gammaQ(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	front := math.Exp(-x + a*math.Log(x) - lg)
	if x < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 1000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-16 {
				break
			}
		}
		return math.Max(0, 1-sum*front)
	}
	// Modified Lentz.
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 1000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-16 {
			break
		}
	}
	return front * h
}

// SRM is the chi-square test of the users per arm against the arms'
// configured weights (a sample-ratio mismatch check): the statistic
// Σ (observed − expected)²/expected with one degree of freedom fewer than
// arms. users and weights are by arm; an arm with a weight and no users
// counts as zero users. An arm of weight 0 expects no users: any user in
// it is a mismatch (p = 0). Returns the p-value; 1 with fewer than two
// arms of positive weight, or no users.
func SRM(users map[string]int64, weights map[string]float64) float64 {
	total, wsum, arms := 0.0, 0.0, 0
	for arm, w := range weights {
		if w <= 0 {
			if users[arm] > 0 {
				return 0
			}
			continue
		}
		total += float64(users[arm])
		wsum += w
		arms++
	}
	if arms < 2 || total == 0 {
		return 1
	}
	chi2 := 0.0
	for arm, w := range weights {
		if w > 0 {
			e := total * w / wsum
			d := float64(users[arm]) - e
			chi2 += d * d / e
		}
	}
	return ChiSquareP(chi2, arms-1)
}
