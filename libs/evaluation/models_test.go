package evaluation

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// randomData draws users×items with each pair present with probability
// density, some pairs repeated (which must not change the binary matrix).
func randomData(seed uint64, users, items int, density float64) *Data {
	rng := rand.New(rand.NewPCG(seed, 2))
	var in []Interaction
	for u := range users {
		for i := range items {
			if rng.Float64() >= density {
				continue
			}
			for range 1 + rng.IntN(2) {
				in = append(in, Interaction{User: fmt.Sprintf("u%03d", u), Item: fmt.Sprintf("i%03d", i), Time: at(rng.IntN(100)), Relevant: rng.IntN(2) == 0})
			}
		}
	}
	return NewData(in, catalogueIDs(items))
}

func catalogueIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("i%03d", i)
	}
	return ids
}

// binary is d's users×items 0/1 matrix, built naively.
func binary(d *Data) [][]float64 {
	x := make([][]float64, len(d.Users))
	for u, evs := range d.ByUser {
		x[u] = make([]float64, len(d.Items))
		for _, e := range evs {
			x[u][e.Item] = 1
		}
	}
	return x
}

// invert is a naive Gauss-Jordan inverse with partial pivoting.
func invert(a [][]float64) [][]float64 {
	n := len(a)
	m := make([][]float64, n)
	for i := range m {
		m[i] = make([]float64, 2*n)
		copy(m[i], a[i])
		m[i][n+i] = 1
	}
	for c := range n {
		p := c
		for r := c + 1; r < n; r++ {
			if math.Abs(m[r][c]) > math.Abs(m[p][c]) {
				p = r
			}
		}
		m[c], m[p] = m[p], m[c]
		pivot := m[c][c]
		for k := range 2 * n {
			m[c][k] /= pivot
		}
		for r := range n {
			if r == c || m[r][c] == 0 {
				continue
			}
			f := m[r][c]
			for k := range 2 * n {
				m[r][k] -= f * m[c][k]
			}
		}
	}
	inv := make([][]float64, n)
	for i := range inv {
		inv[i] = m[i][n:]
	}
	return inv
}

// easeReference computes W[j][i] for the given items (catalogue indices) by
// the formulas, over the whole catalogue (zero outside items).
func easeReference(x [][]float64, nItems int, items []int, lambda float64) [][]float64 {
	m := len(items)
	g := make([][]float64, m)
	for a := range g {
		g[a] = make([]float64, m)
		for b := range g[a] {
			for _, row := range x {
				g[a][b] += row[items[a]] * row[items[b]]
			}
		}
		g[a][a] += lambda
	}
	p := invert(g)
	w := make([][]float64, nItems)
	for j := range w {
		w[j] = make([]float64, nItems)
	}
	for a := range m { // j = items[a], i = items[b]: W[j][i] = B[j][i] = -P[j][i]/P[i][i]
		for b := range m {
			if a != b {
				w[items[a]][items[b]] = -p[a][b] / p[b][b]
			}
		}
	}
	return w
}

// mostPopular returns the maxItems items with the most users (ties by
// index), in index order; all items with a user for maxItems <= 0.
func mostPopular(x [][]float64, maxItems int) []int {
	users := make([]int, len(x[0]))
	var items []int
	for i := range users {
		for _, row := range x {
			users[i] += int(row[i])
		}
		if users[i] > 0 {
			items = append(items, i)
		}
	}
	slices.SortStableFunc(items, func(a, b int) int { return cmp.Compare(users[b], users[a]) })
	if maxItems > 0 && len(items) > maxItems {
		items = items[:maxItems]
	}
	slices.Sort(items)
	return items
}

// checkModel compares got with the dense reference want (W[j][i], zeros
// absent): every list sorted by weight descending then index, free of j
// itself, its weights within tol of want; with k > 0 it holds the
// min(k, nonzero) largest weights of want[j], otherwise all nonzero ones.
func checkModel(t *testing.T, name string, got *ItemModel, want [][]float64, k int, tol float64) {
	t.Helper()
	if len(got.Neighbors) != len(want) {
		t.Fatalf("%s: %d neighbour lists, want %d", name, len(got.Neighbors), len(want))
	}
	for j, row := range got.Neighbors {
		if !slices.IsSortedFunc(row, compareNeighbors) {
			t.Errorf("%s: Neighbors[%d] = %v, not sorted by weight descending then index", name, j, row)
		}
		var nonzero []float64
		for _, w := range want[j] {
			if w != 0 {
				nonzero = append(nonzero, w)
			}
		}
		slices.Sort(nonzero)
		slices.Reverse(nonzero)
		wantLen := len(nonzero)
		if k > 0 {
			wantLen = min(k, wantLen)
		}
		if len(row) != wantLen {
			t.Errorf("%s: len(Neighbors[%d]) = %d, want %d", name, j, len(row), wantLen)
			continue
		}
		for r, nb := range row {
			if int(nb.Item) == j {
				t.Errorf("%s: Neighbors[%d] holds %d itself", name, j, j)
			}
			if w := want[j][nb.Item]; math.Abs(float64(nb.Weight)-w) > tol {
				t.Errorf("%s: W[%d][%d] = %v, want %v", name, j, nb.Item, nb.Weight, w)
			}
			// The r-th kept weight is the r-th largest of the reference.
			if math.Abs(float64(nb.Weight)-nonzero[r]) > tol {
				t.Errorf("%s: Neighbors[%d][%d].Weight = %v, want the %d-th largest %v", name, j, r, nb.Weight, r+1, nonzero[r])
			}
		}
	}
}

func TestEASE(t *testing.T) {
	d := randomData(11, 30, 12, 0.3)
	x := binary(d)
	tests := []struct {
		name             string
		lambda           float64
		k, maxItems      int
		wantParticipants int
	}{
		{"all items", 5, 0, 0, 12},
		{"top 3 neighbours", 5, 3, 0, 12},
		{"8 most popular items", 5, 0, 8, 8},
		{"8 most popular items, top 4, small lambda", 0.5, 4, 8, 8},
		{"maxItems above the catalogue", 5, 0, 100, 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EASE(d, tt.lambda, tt.k, tt.maxItems)
			if err != nil {
				t.Fatalf("EASE(%v, %d, %d) error: %v", tt.lambda, tt.k, tt.maxItems, err)
			}
			items := mostPopular(x, tt.maxItems)
			if len(items) != tt.wantParticipants {
				t.Fatalf("test data: %d items with users, want %d", len(items), tt.wantParticipants)
			}
			want := easeReference(x, len(d.Items), items, tt.lambda)
			checkModel(t, fmt.Sprintf("EASE(%v, %d, %d)", tt.lambda, tt.k, tt.maxItems), got, want, tt.k, 1e-4)
			for j, row := range got.Neighbors {
				if !slices.Contains(items, j) && len(row) > 0 {
					t.Errorf("EASE(...): item %d is not among the %d most popular but has neighbours %v", j, tt.maxItems, row)
				}
			}
		})
	}
}

// The defining property of EASE: B = I - P·diag(1/diag P) minimises
// ||X - XB||² + λ||B||² subject to a zero diagonal, whose stationarity
// condition is G·B = G - diag(μ) for some μ: (G·B)[a][b] = G[a][b] off the
// diagonal.
func TestEASEStationarity(t *testing.T) {
	d := randomData(5, 25, 10, 0.35)
	x := binary(d)
	const lambda = 3
	model, err := EASE(d, lambda, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := len(d.Items)
	b := make([][]float64, n) // B[j][i] = W[j][i]
	for j := range b {
		b[j] = make([]float64, n)
		for _, nb := range model.Neighbors[j] {
			b[j][nb.Item] = float64(nb.Weight)
		}
	}
	for a := range n {
		for c := range n {
			if a == c {
				continue
			}
			var gb, g float64
			for j := range n {
				var gaj float64
				for _, row := range x {
					gaj += row[a] * row[j]
				}
				if j == a {
					gaj += lambda
				}
				gb += gaj * b[j][c]
				if j == c {
					g = gaj
				}
			}
			if math.Abs(gb-g) > 1e-3 {
				t.Errorf("EASE: (G·B)[%d][%d] = %v, want G[%d][%d] = %v", a, c, gb, a, c, g)
			}
		}
	}
}

func TestEASEErrors(t *testing.T) {
	wide := randomData(3, 10, 30, 0.4) // more items than users: XᵀX is singular
	tests := []struct {
		name   string
		lambda float64
		want   error
	}{
		{"negative lambda on a singular Gram matrix", -1, ErrNotPositiveDefinite},
		{"NaN lambda", math.NaN(), nil},
		{"infinite lambda", math.Inf(1), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := EASE(wide, tt.lambda, 0, 0)
			if err == nil {
				t.Fatalf("EASE(%v) = %v, nil; want an error", tt.lambda, m)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("EASE(%v) error = %v, want %v", tt.lambda, err, tt.want)
			}
		})
	}
	if _, err := EASE(wide, 1, 0, 0); err != nil {
		t.Errorf("EASE(1) on the same data: %v, want no error", err)
	}
}

func TestItemKNN(t *testing.T) {
	d := randomData(13, 30, 15, 0.25)
	x := binary(d)
	n := len(d.Items)
	want := make([][]float64, n)
	for j := range want {
		want[j] = make([]float64, n)
		for i := range want[j] {
			if i == j {
				continue
			}
			var common, dj, di float64
			for _, row := range x {
				common += row[j] * row[i]
				dj += row[j]
				di += row[i]
			}
			if common > 0 {
				want[j][i] = common / math.Sqrt(dj*di)
			}
		}
	}
	for _, k := range []int{0, -1, 1, 3, 100} {
		t.Run(fmt.Sprintf("k=%d", k), func(t *testing.T) {
			checkModel(t, fmt.Sprintf("ItemKNN(%d)", k), ItemKNN(d, k), want, k, 1e-6)
		})
	}
}

func TestItemModelScorer(t *testing.T) {
	m := &ItemModel{Neighbors: [][]Neighbor{
		{{Item: 1, Weight: 2}, {Item: 2, Weight: -1}},
		{{Item: 0, Weight: 0.5}, {Item: 3, Weight: 0.25}},
		nil,
		{{Item: 1, Weight: 4}},
	}}
	tests := []struct {
		name    string
		history []Event
		want    []float32
	}{
		{"no history", nil, []float32{0, 0, 0, 0}},
		{"one item", relevant(0), []float32{0, 2, -1, 0}},
		{"repeats count once", relevant(1, 0, 1, 0), []float32{0.5, 2, -1, 0.25}},
		{"item without neighbours", relevant(2, 3), []float32{0, 4, 0, 0}},
	}
	score := m.Scorer()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scores := []float32{9, 9, 9, 9}
			score(0, tt.history, scores)
			if !slices.Equal(scores, tt.want) {
				t.Errorf("score(%v) = %v, want %v", tt.history, scores, tt.want)
			}
		})
	}
}

// twoBlocks is a rank-2-ish world: half the users favour the first items,
// half the last ones, with noise.
func twoBlocks(seed uint64, users, items int) *Data {
	rng := rand.New(rand.NewPCG(seed, 3))
	var in []Interaction
	for u := range users {
		for i := range items {
			p := 0.08
			if (u%2 == 0) == (i < items/2) {
				p = 0.8
			}
			if rng.Float64() < p {
				in = append(in, Interaction{User: fmt.Sprintf("u%03d", u), Item: fmt.Sprintf("i%03d", i), Time: at(i), Relevant: true})
			}
		}
	}
	return NewData(in, catalogueIDs(items))
}

func TestPureSVD(t *testing.T) {
	tests := []struct {
		name         string
		users, items int
		dim, iters   int
		checkSpace   bool // compare the subspace with the top eigenvectors of XᵀX
	}{
		{"rank-2-ish, dim 2", 40, 15, 2, 60, true},
		{"rank-2-ish, dim 4", 40, 15, 4, 200, false},
		{"rank below dim", 5, 15, 8, 30, false},
		{"dim equals the catalogue", 20, 6, 6, 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := twoBlocks(21, tt.users, tt.items)
			v := PureSVD(d, tt.dim, tt.iters, 42)
			n, dim := len(d.Items), tt.dim
			if len(v) != n*dim {
				t.Fatalf("len(PureSVD(...)) = %d, want %d", len(v), n*dim)
			}
			col := func(c int) []float64 {
				out := make([]float64, n)
				for i := range out {
					out[i] = float64(v[i*dim+c])
				}
				return out
			}
			// VᵀV = I.
			for a := range dim {
				for b := range dim {
					var dot, want float64
					for i, x := range col(a) {
						dot += x * col(b)[i]
					}
					if a == b {
						want = 1
					}
					if math.Abs(dot-want) > 1e-5 {
						t.Errorf("PureSVD(...): (VᵀV)[%d][%d] = %v, want %v", a, b, dot, want)
					}
				}
			}

			x := binary(d)
			if tt.checkSpace {
				// V Vᵀ against the projector on the top-dim eigenvectors of XᵀX.
				g := mat.NewSymDense(n, nil)
				for a := range n {
					for b := a; b < n; b++ {
						var s float64
						for _, row := range x {
							s += row[a] * row[b]
						}
						g.SetSym(a, b, s)
					}
				}
				var eig mat.EigenSym
				if !eig.Factorize(g, true) {
					t.Fatal("EigenSym failed")
				}
				vals := eig.Values(nil) // ascending
				if dim < n && vals[n-dim-1] > 0.9*vals[n-dim] {
					t.Fatalf("test data: no eigengap after %d: %v", dim, vals)
				}
				var vecs mat.Dense
				eig.VectorsTo(&vecs)
				for a := range n {
					for b := range n {
						var want, got float64
						for c := range dim {
							want += vecs.At(a, n-1-c) * vecs.At(b, n-1-c)
							got += float64(v[a*dim+c]) * float64(v[b*dim+c])
						}
						if math.Abs(got-want) > 1e-4 {
							t.Errorf("PureSVD(...): (VVᵀ)[%d][%d] = %v, want %v", a, b, got, want)
						}
					}
				}
			}

			// EmbeddingScorer = x_u V Vᵀ computed naively.
			score := EmbeddingScorer(v, dim)
			scores := make([]float32, n)
			for u, row := range x {
				score(u, d.ByUser[u], scores)
				for i := range n {
					var want float64
					for j := range n {
						for c := range dim {
							want += row[j] * float64(v[j*dim+c]) * float64(v[i*dim+c])
						}
					}
					if math.Abs(float64(scores[i])-want) > 1e-4*max(1, math.Abs(want)) {
						t.Errorf("EmbeddingScorer: score(%d, %d) = %v, want %v", u, i, scores[i], want)
					}
				}
			}

			if again := PureSVD(d, tt.dim, tt.iters, 42); !slices.Equal(again, v) {
				t.Errorf("PureSVD(..., seed 42) differs between two runs")
			}
		})
	}
}

func TestPureSVDDimBeyondCatalogue(t *testing.T) {
	d := twoBlocks(1, 10, 4)
	v := PureSVD(d, 6, 10, 1)
	for i := range 4 {
		for c := 4; c < 6; c++ {
			if v[i*6+c] != 0 {
				t.Errorf("PureSVD(dim 6 > 4 items)[%d][%d] = %v, want 0", i, c, v[i*6+c])
			}
		}
	}
	if got := PureSVD(d, 0, 10, 1); got != nil {
		t.Errorf("PureSVD(dim 0) = %v, want nil", got)
	}
}

// On a world where every user consumes items of one of two clusters, the
// models that learn item-item structure must beat global popularity.
func TestBaselinesBeatPopularityOnClusters(t *testing.T) {
	const users, perCluster = 300, 50
	rng := rand.New(rand.NewPCG(17, 4))
	var in []Interaction
	for u := range users {
		cluster := u % 2
		seen := map[int]bool{}
		for len(seen) < 12 {
			// Skewed within the cluster so that popularity is a real baseline.
			i := cluster*perCluster + int(float64(perCluster)*math.Pow(rng.Float64(), 2))
			if seen[i] {
				continue
			}
			seen[i] = true
			in = append(in, Interaction{User: fmt.Sprintf("u%03d", u), Item: fmt.Sprintf("i%03d", i), Time: at(rng.IntN(1000)), Relevant: true})
		}
	}
	train, test := NewData(in, nil).Split(0.25)

	pop := Evaluate(train, test, Popularity(train))
	ease, err := EASE(train, 20, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	models := []struct {
		name  string
		score Scorer
	}{
		{"EASE", ease.Scorer()},
		{"ItemKNN", ItemKNN(train, 20).Scorer()},
		{"PureSVD", EmbeddingScorer(PureSVD(train, 4, 30, 1), 4)},
	}
	for _, m := range models {
		got := Evaluate(train, test, m.score)
		t.Logf("%s: %v; Popularity: %v", m.name, got, pop)
		if got.NDCG10 <= pop.NDCG10 {
			t.Errorf("Evaluate(%s).NDCG10 = %v, want above Popularity's %v", m.name, got.NDCG10, pop.NDCG10)
		}
	}
}
