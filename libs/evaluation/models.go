package evaluation

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"gonum.org/v1/gonum/mat"
)

// ErrNotPositiveDefinite is returned (wrapped) by EASE when the regularised
// Gram matrix cannot be factorised, typically because lambda is too small
// (or not positive) for the data.
var ErrNotPositiveDefinite = errors.New("gram matrix is not positive definite")

// Popularity scores items by their number of training events (all events, relevant or not).
// The Scorer it returns ignores the user and is safe for concurrent use.
func Popularity(train *Data) Scorer {
	counts := make([]float32, len(train.Items))
	for _, events := range train.ByUser {
		for _, e := range events {
			counts[e.Item]++
		}
	}
	return func(_ int, _ []Event, scores []float32) {
		copy(scores, counts)
	}
}

// Neighbor is one entry of an item-item model.
type Neighbor struct {
	Item   int32
	Weight float32
}

// ItemModel scores score(u, i) = sum over the distinct items j of u's history of W[j][i].
// Neighbors[j] lists the nonzero W[j][·] kept, sorted by weight descending (ties by index), never j itself.
//
// An ItemModel is read-only once built and may be shared between goroutines.
type ItemModel struct {
	Neighbors [][]Neighbor
}

// Scorer returns a Scorer for m. Every item gets a score, 0 when no history
// item has it as a neighbour (that is its score under the model; EASE's
// negative weights can put items below it). The sum runs over the history's
// distinct items in index order, so it does not depend on the order or
// repetition of events. The returned Scorer reuses a buffer: use it from one
// goroutine at a time, and call Scorer once per goroutine to score in parallel.
func (m *ItemModel) Scorer() Scorer {
	var items []int32
	return func(_ int, history []Event, scores []float32) {
		clear(scores)
		items = distinctItems(items[:0], history)
		for _, j := range items {
			for _, nb := range m.Neighbors[j] {
				scores[nb.Item] += nb.Weight
			}
		}
	}
}

// distinctItems appends the distinct items of events to dst, sorted; dst's
// existing entries are left alone.
func distinctItems(dst []int32, events []Event) []int32 {
	start := len(dst)
	for _, e := range events {
		dst = append(dst, e.Item)
	}
	added := dst[start:]
	slices.Sort(added)
	return dst[:start+len(slices.Compact(added))]
}

// binaryMatrix is the binary user-item matrix X of some Data: a user-item
// pair is 1 however many events it has.
type binaryMatrix struct {
	userItems [][]int32 // per user, distinct items, ascending
	itemUsers [][]int32 // per item, distinct users, ascending
}

func newBinaryMatrix(d *Data) binaryMatrix {
	total := 0
	for _, events := range d.ByUser {
		total += len(events)
	}
	flat := make([]int32, 0, total)
	userItems := make([][]int32, len(d.ByUser))
	for u, events := range d.ByUser {
		start := len(flat)
		flat = distinctItems(flat, events)
		userItems[u] = flat[start:len(flat):len(flat)]
	}

	degree := make([]int, len(d.Items))
	for _, items := range userItems {
		for _, i := range items {
			degree[i]++
		}
	}
	byItem := make([]int32, len(flat))
	itemUsers := make([][]int32, len(d.Items))
	off := 0
	for i, n := range degree {
		itemUsers[i] = byItem[off : off : off+n]
		off += n
	}
	for u, items := range userItems { // users ascending, so each list is sorted
		for _, i := range items {
			itemUsers[i] = append(itemUsers[i], int32(u))
		}
	}
	return binaryMatrix{userItems: userItems, itemUsers: itemUsers}
}

// compareNeighbors orders by weight descending, then item index ascending.
// Weights are never NaN, so plain comparisons do (and are faster than cmp.Compare).
func compareNeighbors(a, b Neighbor) int {
	switch {
	case a.Weight > b.Weight:
		return -1
	case a.Weight < b.Weight:
		return 1
	}
	return int(a.Item - b.Item)
}

// keepTop sorts row and returns a copy of its first k entries (all for k <= 0),
// so that the scratch row can be reused.
func keepTop(row []Neighbor, k int) []Neighbor {
	slices.SortFunc(row, compareNeighbors)
	if k > 0 && len(row) > k {
		row = row[:k]
	}
	return slices.Clone(row)
}

// ItemKNN: cosine similarity between items' binary user vectors (a user-item
// pair counts once however many events), keeping each item's k most similar
// items (k <= 0: all nonzero).
//
// cos(i, j) = |users(i) ∩ users(j)| / sqrt(|users(i)|·|users(j)|). The cost is
// the sum over users of the square of their number of distinct items, plus
// sorting each item's co-occurring items.
func ItemKNN(train *Data, k int) *ItemModel {
	x := newBinaryMatrix(train)
	n := len(train.Items)
	co := make([]int32, n)
	var touched []int32
	var row []Neighbor
	neighbors := make([][]Neighbor, n)
	for i := range n {
		touched = touched[:0]
		for _, u := range x.itemUsers[i] {
			for _, j := range x.userItems[u] {
				if j == int32(i) {
					continue
				}
				if co[j] == 0 {
					touched = append(touched, j)
				}
				co[j]++
			}
		}
		if len(touched) == 0 {
			continue
		}
		row = row[:0]
		di := float64(len(x.itemUsers[i]))
		for _, j := range touched {
			w := cosine(co[j], di, float64(len(x.itemUsers[j])))
			row = append(row, Neighbor{Item: j, Weight: w})
			co[j] = 0
		}
		neighbors[i] = keepTop(row, k)
	}
	return &ItemModel{Neighbors: neighbors}
}

func cosine(common int32, di, dj float64) float32 {
	return float32(float64(common) / math.Sqrt(di*dj))
}

// EASE: Steck's closed-form linear item-item model on the binary user-item
// matrix X: G = XᵀX + λI, P = G⁻¹, B[i][j] = -P[i][j]/P[j][j] (j != i), B[j][j] = 0;
// W[j][i] = B[j][i] (score = x_u · B[:, i]). Only the maxItems items with
// the most training users take part (maxItems <= 0: all); others have no
// neighbours and receive no weight. k: neighbours kept per item (<= 0: all nonzero).
//
// Ties in the number of users are broken by item index. Items without any
// training user never take part: their rows and columns of B are zero
// whatever λ, so leaving them out changes nothing but the cost. With k > 0
// the k largest weights are kept (negative weights are dropped first).
//
// Cost: with m taking part, building G is the sum over users of the square
// of their distinct items; the Cholesky factorisation and inverse (gonum,
// float64) take O(m³) time and O(m²) memory (m = 2000: about 32 MB and a few
// seconds; m = 10000: about 800 MB and several minutes), and k <= 0 keeps a
// dense m×m model. Use maxItems to bound m.
//
// EASE returns an error wrapping ErrNotPositiveDefinite when G cannot be
// factorised (λ too small, or not positive, for a rank-deficient X), or
// gonum's mat.Condition when G is too ill-conditioned to invert.
func EASE(train *Data, lambda float64, k, maxItems int) (*ItemModel, error) {
	if math.IsNaN(lambda) || math.IsInf(lambda, 0) {
		return nil, fmt.Errorf("EASE: lambda %g is not finite", lambda)
	}
	n := len(train.Items)
	x := newBinaryMatrix(train)

	sel := make([]int32, 0, n)
	for i, users := range x.itemUsers {
		if len(users) > 0 {
			sel = append(sel, int32(i))
		}
	}
	if maxItems > 0 && len(sel) > maxItems {
		slices.SortStableFunc(sel, func(a, b int32) int { // stable: ties stay in index order
			return cmp.Compare(len(x.itemUsers[b]), len(x.itemUsers[a]))
		})
		sel = sel[:maxItems]
		slices.Sort(sel)
	}
	model := &ItemModel{Neighbors: make([][]Neighbor, n)}
	m := len(sel)
	if m == 0 {
		return model, nil
	}
	pos := make([]int32, n) // item -> row of G, or -1
	for i := range pos {
		pos[i] = -1
	}
	for a, i := range sel {
		pos[i] = int32(a)
	}

	// Upper triangle of G = XᵀX + λI (gonum reads only that half).
	g := make([]float64, m*m)
	var rows []int32
	for _, items := range x.userItems {
		rows = rows[:0]
		for _, i := range items { // ascending items give ascending rows
			if p := pos[i]; p >= 0 {
				rows = append(rows, p)
			}
		}
		for ai, a := range rows {
			line := g[int(a)*m : int(a)*m+m]
			for _, b := range rows[ai:] {
				line[b]++
			}
		}
	}
	for a := range m {
		g[a*m+a] += lambda
	}

	var chol mat.Cholesky
	if !chol.Factorize(mat.NewSymDense(m, g)) {
		return nil, fmt.Errorf("EASE: factorise XᵀX+%gI over %d items: %w", lambda, m, ErrNotPositiveDefinite)
	}
	var inv mat.SymDense
	if err := chol.InverseTo(&inv); err != nil {
		return nil, fmt.Errorf("EASE: invert XᵀX+%gI over %d items: %w", lambda, m, err)
	}
	raw := inv.RawSymmetric() // upper triangle valid
	p := func(a, b int) float64 {
		if a > b {
			a, b = b, a
		}
		return raw.Data[a*raw.Stride+b]
	}
	diag := make([]float64, m)
	for a := range m {
		diag[a] = p(a, a)
	}

	row := make([]Neighbor, 0, m)
	for a := range m { // a is j, b is i: W[j][i] = B[j][i] = -P[j][i]/P[i][i]
		row = row[:0]
		for b := range m {
			if b == a {
				continue
			}
			if w := float32(-p(a, b) / diag[b]); w != 0 {
				row = append(row, Neighbor{Item: sel[b], Weight: w})
			}
		}
		model.Neighbors[sel[a]] = keepTop(row, k)
	}
	return model, nil
}
