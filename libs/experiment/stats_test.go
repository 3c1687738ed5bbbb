package experiment

import (
	"math"
	"math/rand/v2"
	"testing"
)

// user is one user's counts: clicks, impressions, and pre-experiment
// clicks and impressions.
type user struct{ y, x, c, m float64 }

func momentsOf(us []user) Moments {
	var m Moments
	for _, u := range us {
		m.Add(u.y, u.x, u.c, u.m)
	}
	return m
}

func near(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Max(math.Abs(want), 1e-300)
}

// TestCTRDeltaMethod checks the ratio estimate and its variance on small
// hand-made data against the delta method written out from its formula
// here, user by user: Var(ȳ/x̄) ≈ s²(y − R·x) / (n·x̄²), with s² the
// sample variance of each user's residual against the pooled ratio R.
func TestCTRDeltaMethod(t *testing.T) {
	for _, tc := range []struct {
		name  string
		users []user
		want  float64 // the variance, computed by hand (Python) for the first case
	}{
		{"five users", []user{{y: 1, x: 10}, {y: 0, x: 5}, {y: 3, x: 12}, {y: 2, x: 8}, {y: 0, x: 3}}, 0.00255139},
		{"one heavy user", []user{{y: 40, x: 100}, {y: 1, x: 10}, {y: 0, x: 10}, {y: 2, x: 10}}, 0},
		{"equal users", []user{{y: 1, x: 4}, {y: 1, x: 4}, {y: 1, x: 4}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, sy, sx := 0.0, 0.0, 0.0
			for _, u := range tc.users {
				n, sy, sx = n+1, sy+u.y, sx+u.x
			}
			r, xbar := sy/sx, sx/n
			ss := 0.0
			for _, u := range tc.users {
				d := u.y - r*u.x
				ss += d * d
			}
			ref := ss / (n - 1) / (n * xbar * xbar)
			got, ok := momentsOf(tc.users).CTR()
			if !ok || !near(got.Value, r, 1e-12) || math.Abs(got.Var-ref) > 1e-12*math.Max(ref, 1) {
				t.Fatalf("CTR() = %+v, %v; want {%v %v}", got, ok, r, ref)
			}
			if tc.want != 0 && math.Abs(got.Var-tc.want) > 1e-8 {
				t.Errorf("CTR().Var = %.8f, want %.8f (by hand)", got.Var, tc.want)
			}
		})
	}
	if _, ok := momentsOf([]user{{y: 1, x: 3}}).CTR(); ok {
		t.Error("CTR() of one user is ok, want no variance")
	}
}

// world draws users whose click propensities differ (logit-normal around
// 10%) and who see ten items per session over a few sessions, with a
// pre-experiment period drawn from the same propensity.
type world struct {
	rng *rand.Rand
}

func (w world) user(lift float64) user {
	p := 1 / (1 + math.Exp(2.2-0.9*w.rng.NormFloat64()))
	sessions := 1
	for w.rng.Float64() < 0.65 {
		sessions++
	}
	pre := 0
	for w.rng.Float64() < 0.8 {
		pre++
	}
	u := user{x: float64(10 * sessions), m: float64(10 * pre)}
	for range int(u.m) {
		if w.rng.Float64() < p {
			u.c++
		}
	}
	p *= 1 + lift
	for range int(u.x) {
		if w.rng.Float64() < p {
			u.y++
		}
	}
	return u
}

// TestDeltaMethodIsCalibrated: across simulated experiments, the spread
// of the CTR estimates matches the delta method's variance, while the
// impression-level binomial variance is several times too small.
func TestDeltaMethodIsCalibrated(t *testing.T) {
	w := world{rand.New(rand.NewPCG(7, 7))}
	const runs, users = 2000, 400
	var sum, sum2, delta, binomial float64
	for range runs {
		var m Moments
		for range users {
			u := w.user(0)
			m.Add(u.y, u.x, 0, 0)
		}
		e, _ := m.CTR()
		sum, sum2 = sum+e.Value, sum2+e.Value*e.Value
		delta += e.Var / runs
		binomial += e.Value * (1 - e.Value) / m.Sum[impressions] / runs
	}
	mean := sum / runs
	empirical := (sum2 - runs*mean*mean) / (runs - 1)
	t.Logf("variance of the CTR across %d experiments %.3g; delta method %.3g; impression-level binomial %.3g", runs, empirical, delta, binomial)
	if !near(delta, empirical, 0.1) {
		t.Errorf("delta-method variance %.3g, empirical %.3g: want within 10%%", delta, empirical)
	}
	if binomial > empirical/2 {
		t.Errorf("binomial variance %.3g is not far below the empirical %.3g: the world is not clustered enough to test anything", binomial, empirical)
	}
}

// TestLift checks the lift's variance against the delta method with the
// gradient of t/c − 1 taken numerically.
func TestLift(t *testing.T) {
	tr, ct := Estimate{0.12, 4e-5}, Estimate{0.1, 3e-5}
	f := func(a, b float64) float64 { return a/b - 1 }
	h := 1e-6
	dt := (f(tr.Value+h, ct.Value) - f(tr.Value-h, ct.Value)) / (2 * h)
	dc := (f(tr.Value, ct.Value+h) - f(tr.Value, ct.Value-h)) / (2 * h)
	want := Estimate{0.2, dt*dt*tr.Var + dc*dc*ct.Var}
	got := Lift(tr, ct)
	if !near(got.Value, want.Value, 1e-12) || !near(got.Var, want.Var, 1e-6) {
		t.Errorf("Lift(%v, %v) = %+v, want %+v", tr, ct, got, want)
	}
	low, high := got.Interval()
	if p := got.P(); (p < Alpha) != (low > 0 || high < 0) {
		t.Errorf("Lift p = %v but interval [%v, %v]: want p < α exactly when the interval excludes 0", p, low, high)
	}
	if p := (Estimate{0.1, 0.0025}).P(); !near(p, 0.0455003, 1e-5) { // z = 2: 2·(1 − Φ(2))
		t.Errorf("P(z=2) = %v, want 0.0455003", p)
	}
}

// TestSequential checks the closed-form mixture likelihood ratio against
// a numerical integral of the normal likelihood ratio over the N(0, τ²)
// mixture, and the confidence sequence's ends against the test.
func TestSequential(t *testing.T) {
	lr := func(x, v, theta0, tau float64) float64 { // ∫ φ(x; θ, v)/φ(x; θ0, v) φ(θ; θ0, τ²) dθ
		sum, step := 0.0, tau/2000
		for th := theta0 - 12*tau; th <= theta0+12*tau; th += step {
			l := math.Exp((-(x-th)*(x-th) + (x-theta0)*(x-theta0)) / (2 * v))
			sum += l * math.Exp(-(th-theta0)*(th-theta0)/(2*tau*tau)) / (tau * math.Sqrt(2*math.Pi)) * step
		}
		return sum
	}
	for _, e := range []Estimate{{0.05, 0.0004}, {0.2, 0.004}, {-0.01, 0.0001}, {0.3, 0.0009}} {
		p, low, high := Sequential(e, MixtureSD)
		if want := math.Min(1, 1/lr(e.Value, e.Var, 0, MixtureSD)); !near(p, want, 1e-4) {
			t.Errorf("Sequential(%+v) p = %.6g, want %.6g (integral)", e, p, want)
		}
		for _, end := range []float64{low, high} {
			if got := lr(e.Value, e.Var, end, MixtureSD); !near(got, 1/Alpha, 1e-3) {
				t.Errorf("Sequential(%+v): at the sequence's end %v the ratio is %v, want 1/α = %v", e, end, got, 1/Alpha)
			}
		}
		if fl, fh := e.Interval(); !(low < fl && high > fh) {
			t.Errorf("Sequential(%+v) = [%v, %v], not wider than the fixed-horizon [%v, %v]", e, low, high, fl, fh)
		}
	}
}

// TestChiSquareP against the closed forms of the chi-square tail for
// even degrees of freedom (a Poisson sum) and odd ones (erfc plus a sum).
func TestChiSquareP(t *testing.T) {
	ref := func(x float64, df int) float64 {
		h := x / 2
		if df%2 == 0 {
			sum, term := 0.0, 1.0
			for k := range df / 2 {
				if k > 0 {
					term *= h / float64(k)
				}
				sum += term
			}
			return math.Exp(-h) * sum
		}
		sum := math.Erfc(math.Sqrt(h))
		for k := 1; k <= (df-1)/2; k++ {
			lg, _ := math.Lgamma(float64(k) + 0.5)
			sum += math.Exp(-h + (float64(k)-0.5)*math.Log(h) - lg)
		}
		return sum
	}
	for _, df := range []int{1, 2, 3, 4, 7, 10, 31, 50} {
		for _, x := range []float64{0.01, 0.5, 1, 3.84, 10, 22.77, 60, 150} {
			if got, want := ChiSquareP(x, df), ref(x, df); math.Abs(got-want) > 1e-12+1e-9*want {
				t.Errorf("ChiSquareP(%v, %d) = %.12g, want %.12g", x, df, got, want)
			}
		}
	}
}

func TestSRM(t *testing.T) {
	chi2 := func(obs, weights []float64) float64 { // Σ (O − E)²/E
		n, w := 0.0, 0.0
		for i := range obs {
			n, w = n+obs[i], w+weights[i]
		}
		s := 0.0
		for i := range obs {
			e := n * weights[i] / w
			s += (obs[i] - e) * (obs[i] - e) / e
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		users   map[string]int64
		weights map[string]float64
		want    float64
	}{
		// Kohavi, Tang and Xu, "Trustworthy Online Controlled Experiments"
		// (2020), ch. 3: 821,588 vs 815,482 users in a 50/50 split, p ≈ 1.8e-6.
		{"Kohavi's example", map[string]int64{"control": 821588, "treatment": 815482}, map[string]float64{"control": 50, "treatment": 50},
			math.Erfc(math.Sqrt(chi2([]float64{821588, 815482}, []float64{1, 1}) / 2))},
		{"balanced", map[string]int64{"a": 5000, "b": 5000}, map[string]float64{"a": 1, "b": 1}, 1},
		{"70/20/10", map[string]int64{"a": 7100, "b": 1950, "c": 950}, map[string]float64{"a": 70, "b": 20, "c": 10},
			math.Exp(-chi2([]float64{7100, 1950, 950}, []float64{70, 20, 10}) / 2)}, // df 2: e^(−χ²/2)
		{"an empty arm", map[string]int64{"a": 100}, map[string]float64{"a": 1, "b": 1}, math.Erfc(math.Sqrt(100.0 / 2))},
		{"one arm", map[string]int64{"a": 100}, map[string]float64{"a": 1}, 1},
		{"an arm of weight 0, empty", map[string]int64{"a": 5000, "b": 5000}, map[string]float64{"a": 1, "b": 1, "c": 0}, 1},
		{"an arm of weight 0 with users", map[string]int64{"a": 5000, "b": 5000, "c": 1}, map[string]float64{"a": 1, "b": 1, "c": 0}, 0},
	} {
		if got := SRM(tc.users, tc.weights); math.Abs(got-tc.want) > 1e-12+1e-9*tc.want {
			t.Errorf("SRM(%s) = %.6g, want %.6g", tc.name, got, tc.want)
		}
	}
	if p := SRM(map[string]int64{"control": 821588, "treatment": 815482}, map[string]float64{"control": 1, "treatment": 1}); !(p > 1.7e-6 && p < 1.9e-6) {
		t.Errorf("SRM(Kohavi's example) = %.3g, the book says 1.8e-6", p)
	}
}

// TestAAPeeking simulates 1,000 A/A experiments whose users arrive one
// by one, and reads every experiment after every user from the 200th on:
// the fixed-horizon test, stopped the first time p < 0.05, finds a
// difference far more often than 5%; the sequential test, stopped the
// first time its p ≤ 0.05, at most 5% of the time.
func TestAAPeeking(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 simulated experiments")
	}
	w := world{rand.New(rand.NewPCG(2026, 18))}
	const experiments, users, burnIn = 1000, 2000, 200
	var fixedPeeking, sequential, fixedOnce int
	for range experiments {
		var arms [2]Moments
		fixedHit, seqHit := false, false
		for n := range users {
			u := w.user(0)
			arms[w.rng.IntN(2)].Add(u.y, u.x, 0, 0)
			if n+1 < burnIn {
				continue
			}
			c, ok1 := arms[0].CTR()
			tr, ok2 := arms[1].CTR()
			if !ok1 || !ok2 {
				continue
			}
			lift := Lift(tr, c)
			p := lift.P()
			fixedHit = fixedHit || p < Alpha
			sp, _, _ := Sequential(lift, MixtureSD)
			seqHit = seqHit || sp <= Alpha
			if n+1 == users && p < Alpha {
				fixedOnce++
			}
		}
		if fixedHit {
			fixedPeeking++
		}
		if seqHit {
			sequential++
		}
	}
	rate := func(n int) float64 { return float64(n) / experiments }
	t.Logf("A/A, %d experiments of %d users, read after every user from the %dth: false positives: fixed-horizon read once at the end %.1f%%, fixed-horizon peeked %.1f%%, sequential (mSPRT) peeked %.1f%%",
		experiments, users, burnIn, 100*rate(fixedOnce), 100*rate(fixedPeeking), 100*rate(sequential))
	if rate(sequential) > Alpha {
		t.Errorf("sequential test's false-positive rate under peeking %.3f, want ≤ %.2f", rate(sequential), Alpha)
	}
	if rate(fixedPeeking) <= Alpha {
		t.Errorf("fixed-horizon test's false-positive rate under peeking %.3f, want > %.2f (peeking inflates it)", rate(fixedPeeking), Alpha)
	}
	if r := rate(fixedOnce); r < 0.03 || r > 0.07 {
		t.Errorf("fixed-horizon test read once: false positives %.3f, want about 0.05 (a calibrated test)", r)
	}
}
