package evaluation

import (
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"
)

// PureSVD item vectors: the top-dim right singular vectors of the binary
// user-item matrix X, unscaled, as len(Items)×dim row-major float32 (row i is
// item i's vector). With V so defined, PureSVD's score x_u V Vᵀ is
// (Σ_{j∈h(u)} V[j]) · V[i], which is what EmbeddingScorer computes. Scaling
// by the singular values (or their square roots) would weight the directions
// differently and is not PureSVD (Cremonesi, Koren and Turrin, RecSys 2010).
//
// They are computed by block power (subspace) iteration on XᵀX, applied as
// Xᵀ(XQ) without forming it, with modified Gram-Schmidt re-orthonormalisation
// (two passes per column, so the result is orthonormal to rounding), iters
// rounds (iters < 1 is taken as 1), from a random start drawn from seed
// (math/rand/v2 PCG). A final Rayleigh-Ritz step turns the subspace into
// singular vectors ordered by singular value, each with its largest-magnitude
// entry positive. The result is a function of (train, dim, iters, seed) alone.
//
// Each round costs O(nnz(X)·dim + len(Items)·dim²). Convergence depends on
// the gap between the dim-th and (dim+1)-th singular values; a few tens of
// rounds is usual. If X has rank below dim, the extra columns are orthonormal
// directions of its null space (score contributions of zero); if dim exceeds
// len(Items), columns beyond len(Items) are zero. dim <= 0 gives nil.
func PureSVD(train *Data, dim, iters int, seed uint64) (vectors []float32) {
	if dim <= 0 {
		return nil
	}
	n := len(train.Items)
	r := min(dim, n)
	vectors = make([]float32, n*dim)
	if r == 0 {
		return vectors
	}
	x := newBinaryMatrix(train)
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))

	q := make([]float64, n*r) // row-major, n×r
	for i := range q {
		q[i] = rng.NormFloat64()
	}
	orthonormalise(q, n, r, rng)
	y := make([]float64, n*r)
	for range max(iters, 1) {
		gramTimes(x, q, r, y)
		q, y = y, q
		orthonormalise(q, n, r, rng)
	}

	// Rayleigh-Ritz: H = Qᵀ(XᵀX)Q, V = Q·eigenvectors(H) by eigenvalue descending.
	gramTimes(x, q, r, y)
	h := mat.NewSymDense(r, nil)
	for a := range r {
		for b := a; b < r; b++ {
			var s float64
			for i := range n {
				s += q[i*r+a] * y[i*r+b]
			}
			h.SetSym(a, b, s)
		}
	}
	var eig mat.EigenSym
	var rot mat.Dense
	if eig.Factorize(h, true) {
		eig.VectorsTo(&rot) // columns by eigenvalue ascending
	} else {
		// Cannot happen for a finite symmetric H; keep the subspace basis.
		rot = *mat.NewDense(r, r, nil)
		for a := range r {
			rot.Set(r-1-a, a, 1)
		}
	}
	for c := range r {
		src := r - 1 - c // descending
		best, sign := 0.0, 1.0
		for i := range n {
			var v float64
			for a := range r {
				v += q[i*r+a] * rot.At(a, src)
			}
			y[i] = v
			if math.Abs(v) > best {
				best, sign = math.Abs(v), math.Copysign(1, v)
			}
		}
		for i := range n {
			vectors[i*dim+c] = float32(sign * y[i])
		}
	}
	return vectors
}

// gramTimes sets y = XᵀX·q for q, y n×r row-major, one user at a time:
// z = x_u·q, then y[i] += z for each item i of u.
func gramTimes(x binaryMatrix, q []float64, r int, y []float64) {
	clear(y)
	z := make([]float64, r)
	for _, items := range x.userItems {
		clear(z)
		for _, i := range items {
			row := q[int(i)*r : int(i)*r+r]
			for c, v := range row {
				z[c] += v
			}
		}
		for _, i := range items {
			row := y[int(i)*r : int(i)*r+r]
			for c, v := range z {
				row[c] += v
			}
		}
	}
}

// orthonormalise makes the r columns of the n×r row-major q orthonormal by
// modified Gram-Schmidt, run twice per column ("twice is enough") so that
// nearly dependent columns do not lose orthogonality. A column that
// (numerically) lies in the span of the previous ones, as happens when X has
// rank below r, is replaced by a random one and orthogonalised again.
func orthonormalise(q []float64, n, r int, rng *rand.Rand) {
	for c := range r {
		for attempt := 0; ; attempt++ {
			before := columnNorm(q, n, r, c)
			for range 2 {
				for p := range c {
					var dot float64
					for i := range n {
						dot += q[i*r+p] * q[i*r+c]
					}
					for i := range n {
						q[i*r+c] -= dot * q[i*r+p]
					}
				}
			}
			after := columnNorm(q, n, r, c)
			if after > 1e-10*before && after > 0 {
				for i := range n {
					q[i*r+c] /= after
				}
				break
			}
			if attempt > 100 { // r <= n, so a random column all but surely has a new direction
				panic("evaluation: cannot orthonormalise PureSVD basis")
			}
			for i := range n {
				q[i*r+c] = rng.NormFloat64()
			}
		}
	}
}

func columnNorm(q []float64, n, r, c int) float64 {
	var s float64
	for i := range n {
		s += q[i*r+c] * q[i*r+c]
	}
	return math.Sqrt(s)
}

// EmbeddingScorer scores with such vectors: u's vector is the sum of its distinct history items' vectors.
//
// vectors is len(Items)×dim row-major, as PureSVD returns; score(u, i) is the
// dot product of u's vector with item i's, so a user without history scores
// every item 0. The sum runs over distinct items in index order. The returned
// Scorer reuses buffers: use it from one goroutine at a time. It panics if
// dim <= 0 or len(vectors) is not a multiple of dim.
func EmbeddingScorer(vectors []float32, dim int) Scorer {
	if dim <= 0 || len(vectors)%dim != 0 {
		panic("evaluation: EmbeddingScorer: len(vectors) is not a positive multiple of dim")
	}
	var items []int32
	user := make([]float64, dim)
	return func(_ int, history []Event, scores []float32) {
		items = distinctItems(items[:0], history)
		clear(user)
		for _, j := range items {
			for c, v := range vectors[int(j)*dim : int(j)*dim+dim] {
				user[c] += float64(v)
			}
		}
		for i := range scores {
			var s float64
			for c, v := range vectors[i*dim : i*dim+dim] {
				s += user[c] * float64(v)
			}
			scores[i] = float32(s)
		}
	}
}
