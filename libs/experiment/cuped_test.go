package experiment

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestCUPEDReference checks CUPED on small hand-made arms against the
// adjustment written out here user by user: each user's linearised
// contribution to the arm's CTR, L = (y − R·x)/x̄, regressed on their
// covariates z = (c, m) with one θ for both arms, and the adjusted
// variance as the variance of the residual L − θᵀz over n.
func TestCUPEDReference(t *testing.T) {
	arms := [][]user{
		{{1, 10, 2, 20}, {0, 5, 0, 10}, {3, 12, 4, 10}, {2, 8, 1, 20}, {0, 3, 0, 0}, {4, 20, 5, 30}},
		{{2, 10, 3, 20}, {1, 6, 0, 10}, {0, 4, 0, 10}, {5, 15, 6, 30}, {1, 10, 1, 10}},
	}
	type lin struct {
		n, r, zbar0, zbar1 float64
		l, z0, z1          []float64
	}
	cov := func(a, b []float64) float64 { // sample covariance
		ma, mb := 0.0, 0.0
		for i := range a {
			ma, mb = ma+a[i]/float64(len(a)), mb+b[i]/float64(len(b))
		}
		s := 0.0
		for i := range a {
			s += (a[i] - ma) * (b[i] - mb)
		}
		return s / float64(len(a)-1)
	}
	var ls []lin
	var A [2][2]float64
	var b [2]float64
	pooled, count := [2]float64{}, 0.0
	for _, us := range arms {
		var sy, sx float64
		for _, u := range us {
			sy, sx = sy+u.y, sx+u.x
		}
		n := float64(len(us))
		r, xbar := sy/sx, sx/n
		li := lin{n: n, r: r}
		for _, u := range us {
			li.l = append(li.l, (u.y-r*u.x)/xbar)
			li.z0, li.z1 = append(li.z0, u.c), append(li.z1, u.m)
			li.zbar0, li.zbar1 = li.zbar0+u.c/n, li.zbar1+u.m/n
			pooled[0], pooled[1], count = pooled[0]+u.c, pooled[1]+u.m, count+1
		}
		A[0][0] += cov(li.z0, li.z0) / n
		A[0][1] += cov(li.z0, li.z1) / n
		A[1][1] += cov(li.z1, li.z1) / n
		b[0] += cov(li.z0, li.l) / n
		b[1] += cov(li.z1, li.l) / n
		ls = append(ls, li)
	}
	det := A[0][0]*A[1][1] - A[0][1]*A[0][1]
	th := [2]float64{(A[1][1]*b[0] - A[0][1]*b[1]) / det, (A[0][0]*b[1] - A[0][1]*b[0]) / det}
	got, ok := CUPED(momentsOf(arms[0]), momentsOf(arms[1]))
	if !ok {
		t.Fatal("CUPED: not ok")
	}
	for i, li := range ls {
		resid := make([]float64, len(li.l))
		for k := range li.l {
			resid[k] = li.l[k] - th[0]*li.z0[k] - th[1]*li.z1[k]
		}
		want := Estimate{li.r - th[0]*(li.zbar0-pooled[0]/count) - th[1]*(li.zbar1-pooled[1]/count), cov(resid, resid) / li.n}
		if !near(got[i].Value, want.Value, 1e-9) || !near(got[i].Var, want.Var, 1e-9) {
			t.Errorf("CUPED arm %d = %+v, want %+v", i, got[i], want)
		}
		if plain, _ := momentsOf(arms[i]).CTR(); !(got[i].Var < plain.Var) {
			t.Errorf("CUPED arm %d variance %v, not below the unadjusted %v", i, got[i].Var, plain.Var)
		}
	}
	// Without pre-experiment activity there is nothing to adjust by.
	none := []user{{1, 10, 0, 0}, {0, 5, 0, 0}, {3, 12, 0, 0}}
	plain, _ := momentsOf(none).CTR()
	if got, ok := CUPED(momentsOf(none), momentsOf(none)); !ok || got[0] != plain {
		t.Errorf("CUPED without covariates = %+v, want the unadjusted %+v", got, plain)
	}
}

// TestCUPEDReducesVariance simulates experiments in a world where a
// user's pre-experiment clicks come from the same propensity as their
// clicks in the experiment: the CUPED lift is as unbiased as the plain
// one, its spread across experiments is smaller by about the reduction
// the report claims, and that reduction is substantial.
func TestCUPEDReducesVariance(t *testing.T) {
	w := world{rand.New(rand.NewPCG(11, 12))}
	const runs, users, trueLift = 500, 1000, 0.05
	var plain, adjusted []float64
	claimed := 0.0
	for range runs {
		var arms [2]Moments
		for range users {
			k := w.rng.IntN(2)
			u := w.user(float64(k) * trueLift)
			arms[k].Add(u.y, u.x, u.c, u.m)
		}
		c, _ := arms[0].CTR()
		tr, _ := arms[1].CTR()
		lift := Lift(tr, c)
		est, ok := CUPED(arms[0], arms[1])
		if !ok {
			t.Fatal("CUPED: not ok")
		}
		cl := Lift(est[1], est[0])
		plain, adjusted = append(plain, lift.Value), append(adjusted, cl.Value)
		claimed += (1 - cl.Var/lift.Var) / runs
	}
	meanVar := func(xs []float64) (float64, float64) {
		m := 0.0
		for _, x := range xs {
			m += x / float64(len(xs))
		}
		v := 0.0
		for _, x := range xs {
			v += (x - m) * (x - m) / float64(len(xs)-1)
		}
		return m, v
	}
	pm, pv := meanVar(plain)
	am, av := meanVar(adjusted)
	achieved := 1 - av/pv
	t.Logf("lift %.3f: plain mean %.4f (variance %.3g), CUPED mean %.4f (variance %.3g); variance reduction claimed %.1f%%, achieved %.1f%%",
		trueLift, pm, pv, am, av, 100*claimed, 100*achieved)
	if claimed < 0.15 {
		t.Errorf("claimed variance reduction %.3f, want at least 0.15 in a world where the covariate correlates", claimed)
	}
	if math.Abs(achieved-claimed) > 0.1 {
		t.Errorf("achieved variance reduction %.3f, claimed %.3f: want within 0.1", achieved, claimed)
	}
	for _, m := range []float64{pm, am} {
		if math.Abs(m-trueLift) > 3*math.Sqrt(pv/runs) {
			t.Errorf("mean lift %.4f, want %.3f within three standard errors of the mean", m, trueLift)
		}
	}
}
