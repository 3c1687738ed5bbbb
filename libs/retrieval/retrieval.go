// Package retrieval is the candidate stage before ranking: from a user's
// consumed history (newest first, a real-time feature) and the artifacts a
// model version carries (item-to-item neighbours, item vectors, item
// popularity), it proposes candidates from several sources under per-source
// quotas and computes, for each candidate, the retrieval signals the ranking
// model takes as features. The ranking service and the trainer's offline
// evaluation run this same code, so what is evaluated is what is served
// (docs/architecture.md, "Retrieval").
package retrieval

import (
	"cmp"
	"container/heap"
	"math"
	"slices"
	"sync"
)

// Source says which retrieval source proposed a candidate.
type Source uint8

// The sources, in the order their quotas are filled: a candidate proposed
// by several is attributed to the first.
const (
	ItemToItem Source = iota + 1 // neighbours of the user's history
	Embedding                    // nearest item vectors to the user's vector
	Trending                     // the catalogue's recent popularity (cold start)
)

func (s Source) String() string {
	switch s {
	case ItemToItem:
		return "item2item"
	case Embedding:
		return "embedding"
	case Trending:
		return "trending"
	}
	return "unknown"
}

// The signals computed for every candidate; a model reads them through
// metadata sources "retrieval.<name>".
const (
	SignalItemToItem  = "i2i"          // Σ over the consumed history of the neighbour weight
	SignalRecent      = "i2i_recent"   // the same, each history item weighted by its recency
	SignalLiked       = "liked"        // Σ over the clicked items of the liked-neighbour weight
	SignalLikedRecent = "liked_recent" // the same, weighted by recency
	SignalEmbedding   = "embedding"    // dot product of user and item vectors
	SignalPopularity  = "popularity"   // ln(1 + training interactions)
	SignalTrend       = "trend"        // ln(1 + decayed recent interactions at training end)
	SignalLikedRate   = "liked_rate"   // the smoothed share of the item's interactions that were liked
	SignalHistory     = "history"      // ln(1 + the user's history length), the same for every candidate
	SignalClicked     = "clicked"      // ln(1 + the user's clicked items), the same for every candidate
)

// RelativeSuffix names a signal divided by its largest absolute value
// among the request's candidates ("i2i_rel"): how a candidate compares
// with the user's best, whatever the scale of the user's sums.
const RelativeSuffix = "_rel"

// relative are the signals that also come relative.
var relative = []string{SignalItemToItem, SignalRecent, SignalLiked, SignalLikedRecent, SignalEmbedding}

// Signals lists every signal name, in a fixed order.
var Signals = []string{SignalItemToItem, SignalRecent, SignalLiked, SignalLikedRecent, SignalEmbedding, SignalPopularity, SignalTrend, SignalLikedRate, SignalHistory, SignalClicked,
	SignalItemToItem + RelativeSuffix, SignalRecent + RelativeSuffix, SignalLiked + RelativeSuffix, SignalLikedRecent + RelativeSuffix, SignalEmbedding + RelativeSuffix}

// User is what retrieval knows of a user: the items consumed (clicked,
// or rated in a batch load) and the items clicked (or rated at or above
// the click threshold), each newest first.
type User struct {
	History, Clicked []string
}

// RecentHalfLife is the history position at which SignalRecent weighs an
// item half as much as the newest one.
const RecentHalfLife = 8

// Quotas bound how many candidates each source proposes.
type Quotas struct {
	ItemToItem, Embedding, Trending int
}

// DefaultQuotas propose up to 350 candidates.
func DefaultQuotas() Quotas { return Quotas{ItemToItem: 200, Embedding: 100, Trending: 50} }

// Total is the most candidates the quotas allow.
func (q Quotas) Total() int { return q.ItemToItem + q.Embedding + q.Trending }

// Neighbor is one entry of an item's neighbour list.
type Neighbor struct {
	Item   int32
	Weight float32
}

// Index holds one model version's retrieval artifacts. It is immutable
// once built and safe for concurrent use.
type Index struct {
	Items []string // the catalogue, in the order of every per-item slice
	// Neighbors[j] are the items whose score rises when j is in a
	// history, by weight (nil: none), learned from every interaction;
	// Liked[j] the same learned from clicks (relevant interactions) and
	// applied to the clicked items (nil: none).
	Neighbors, Liked [][]Neighbor
	// Vectors are Dim floats per item, row-major (nil: no embedding source).
	Dim     int
	Vectors []float32
	// Popularity, Trend and LikedRate are per item (nil: zeros).
	Popularity, Trend, LikedRate []float32

	indexOnce sync.Once
	index     map[string]int32
	trendTop  []int32 // items by trend, then popularity, descending
	// byNorm are the items by vector norm, descending, with their norms
	// and their vectors copied in that order, for the embedding source's
	// pruned exact search.
	byNorm     []int32
	norms      []float32
	normSorted []float32
	scratch    sync.Pool
}

// Lookup is the position of an item in Items.
func (x *Index) Lookup(id string) (int32, bool) {
	x.prepare()
	i, ok := x.index[id]
	return i, ok
}

func (x *Index) prepare() {
	x.indexOnce.Do(func() {
		x.index = make(map[string]int32, len(x.Items))
		for i, id := range x.Items {
			x.index[id] = int32(i)
		}
		x.trendTop = make([]int32, len(x.Items))
		for i := range x.trendTop {
			x.trendTop[i] = int32(i)
		}
		at := func(s []float32, i int32) float32 {
			if s == nil {
				return 0
			}
			return s[i]
		}
		slices.SortStableFunc(x.trendTop, func(a, b int32) int {
			return cmp.Or(cmp.Compare(at(x.Trend, b), at(x.Trend, a)), cmp.Compare(at(x.Popularity, b), at(x.Popularity, a)))
		})
		if x.Vectors != nil {
			norm := make([]float32, len(x.Items))
			for i := range norm {
				v := x.Vectors[i*x.Dim : (i+1)*x.Dim]
				norm[i] = float32(math.Sqrt(float64(dot(v, v))))
			}
			x.byNorm = slices.Clone(x.trendTop)
			slices.SortStableFunc(x.byNorm, func(a, b int32) int { return cmp.Or(cmp.Compare(norm[b], norm[a]), cmp.Compare(a, b)) })
			x.norms = make([]float32, len(x.Items))
			x.normSorted = make([]float32, 0, len(x.Vectors))
			for k, i := range x.byNorm {
				x.norms[k] = norm[i]
				x.normSorted = append(x.normSorted, x.Vectors[int(i)*x.Dim:(int(i)+1)*x.Dim]...)
			}
		}
	})
}

// Result is what Retrieve proposes: candidate item ids, the source of
// each, and each signal per candidate (Signals[name][k] belongs to IDs[k]).
type Result struct {
	IDs     []string
	Sources []Source
	Signals map[string][]float32
}

// scratch is per-request working memory over the whole catalogue.
type scratch struct {
	i2i, recent, liked, likedRecent, block []float32
	touched, touchedLiked                  []int32
	skip                                   []bool
	user                                   []float32
	hist, clicked, picked                  []int32
	mark                                   []uint32 // positions: an item was seen in this stamp's list
	stamp                                  uint32
}

func (x *Index) getScratch() *scratch {
	if s, ok := x.scratch.Get().(*scratch); ok {
		return s
	}
	n := len(x.Items)
	return &scratch{i2i: make([]float32, n), recent: make([]float32, n), liked: make([]float32, n), likedRecent: make([]float32, n),
		skip: make([]bool, n), mark: make([]uint32, n), user: make([]float32, x.Dim)}
}

// Retrieve proposes candidates for a user. Items the user consumed or
// clicked and those for which exclude returns true are never proposed.
// Unknown ids are ignored. The item-to-item quota is shared: half by the
// clicked items' liked neighbours (when the index has them and the user
// clicked), the rest by the history's neighbours.
func (x *Index) Retrieve(u User, exclude func(id string) bool, q Quotas) Result {
	x.prepare()
	s := x.getScratch()
	defer x.putScratch(s)

	s.hist, s.clicked = x.positions(u.History, s.hist[:0], s), x.positions(u.Clicked, s.clicked[:0], s)
	s.touched = accumulate(x.Neighbors, s.hist, s.i2i, s.recent, s.touched)
	s.touchedLiked = accumulate(x.Liked, s.clicked, s.liked, s.likedRecent, s.touchedLiked)
	hasUser := x.Vectors != nil && len(s.hist)+len(s.clicked) > 0
	if hasUser {
		x.userVector(s.embeddingBasis(), s.user)
	}

	// A proposed item is skipped from then on, like the user's own: each
	// source proposes only what the sources before it did not.
	allowed := func(i int32) bool { return !s.skip[i] && (exclude == nil || !exclude(x.Items[i])) }
	var sources []Source
	take := func(items []int32, src Source) {
		for _, i := range items {
			if !s.skip[i] {
				s.skip[i] = true
				s.picked = append(s.picked, i)
				sources = append(sources, src)
			}
		}
	}
	if q.ItemToItem > 0 {
		rest := q.ItemToItem
		if len(s.touchedLiked) > 0 {
			liked := topK(s.touchedLiked, s.liked, q.ItemToItem/2, allowed)
			take(liked, ItemToItem)
			rest -= len(liked)
		}
		take(topK(s.touched, s.i2i, rest, allowed), ItemToItem)
	}
	if q.Embedding > 0 && hasUser {
		take(x.nearest(s, q.Embedding, allowed), Embedding)
	}
	if q.Trending > 0 {
		var tr []int32
		for _, i := range x.trendTop {
			if len(tr) == q.Trending {
				break
			}
			if allowed(i) {
				tr = append(tr, i)
			}
		}
		take(tr, Trending)
	}

	picked := s.picked
	res := Result{IDs: make([]string, len(picked)), Sources: sources, Signals: make(map[string][]float32, len(Signals))}
	col := func(name string, f func(i int32) float32) {
		v := make([]float32, len(picked))
		for k, i := range picked {
			v[k] = f(i)
		}
		res.Signals[name] = v
	}
	for k, i := range picked {
		res.IDs[k] = x.Items[i]
	}
	col(SignalItemToItem, func(i int32) float32 { return s.i2i[i] })
	col(SignalRecent, func(i int32) float32 { return s.recent[i] })
	col(SignalLiked, func(i int32) float32 { return s.liked[i] })
	col(SignalLikedRecent, func(i int32) float32 { return s.likedRecent[i] })
	col(SignalEmbedding, func(i int32) float32 {
		if !hasUser {
			return 0
		}
		return dot(s.user, x.Vectors[int(i)*x.Dim:(int(i)+1)*x.Dim])
	})
	col(SignalPopularity, func(i int32) float32 { return at(x.Popularity, i) })
	col(SignalTrend, func(i int32) float32 { return at(x.Trend, i) })
	col(SignalLikedRate, func(i int32) float32 { return at(x.LikedRate, i) })
	h, c := float32(math.Log1p(float64(len(s.hist)))), float32(math.Log1p(float64(len(s.clicked))))
	col(SignalHistory, func(int32) float32 { return h })
	col(SignalClicked, func(int32) float32 { return c })
	for _, name := range relative {
		res.Signals[name+RelativeSuffix] = relativeTo(res.Signals[name])
	}
	return res
}

// relativeTo is v divided by its largest absolute value (zeros if none).
func relativeTo(v []float32) []float32 {
	var top float32
	for _, x := range v {
		top = max(top, abs(x))
	}
	out := make([]float32, len(v))
	if top > 0 {
		for i, x := range v {
			out[i] = x / top
		}
	}
	return out
}

func abs(x float32) float32 {
	if x < 0 {
		return -x
	}
	return x
}

// positions appends the catalogue positions of ids (first occurrence,
// known ids only) to dst and marks them to be skipped.
func (x *Index) positions(ids []string, dst []int32, s *scratch) []int32 {
	s.stamp++
	if s.stamp == 0 { // wrapped: no mark may look current
		clear(s.mark)
		s.stamp = 1
	}
	for _, id := range ids {
		if j, ok := x.index[id]; ok && s.mark[j] != s.stamp {
			s.mark[j], s.skip[j] = s.stamp, true
			dst = append(dst, j)
		}
	}
	return dst
}

// embeddingBasis is the items whose vectors make the user's: the clicked
// ones (what the user liked), or the history when there are none.
func (s *scratch) embeddingBasis() []int32 {
	if len(s.clicked) > 0 {
		return s.clicked
	}
	return s.hist
}

// ScoreAll is every item's value of every signal for a user (one slice
// per signal name, each len(Items)), for evaluating one signal alone over
// the whole catalogue. It is slow next to Retrieve and meant for offline
// use.
func (x *Index) ScoreAll(u User) map[string][]float32 {
	x.prepare()
	s := &scratch{skip: make([]bool, len(x.Items)), mark: make([]uint32, len(x.Items)), user: make([]float32, x.Dim)}
	s.hist, s.clicked = x.positions(u.History, nil, s), x.positions(u.Clicked, nil, s)
	out := map[string][]float32{}
	for _, name := range Signals {
		out[name] = make([]float32, len(x.Items))
	}
	accumulate(x.Neighbors, s.hist, out[SignalItemToItem], out[SignalRecent], nil)
	accumulate(x.Liked, s.clicked, out[SignalLiked], out[SignalLikedRecent], nil)
	if x.Vectors != nil && len(s.hist)+len(s.clicked) > 0 {
		x.userVector(s.embeddingBasis(), s.user)
		scan(s.user, x.Vectors, out[SignalEmbedding], x.Dim)
	}
	h, c := float32(math.Log1p(float64(len(s.hist)))), float32(math.Log1p(float64(len(s.clicked))))
	for i := range x.Items {
		out[SignalPopularity][i] = at(x.Popularity, int32(i))
		out[SignalTrend][i] = at(x.Trend, int32(i))
		out[SignalLikedRate][i] = at(x.LikedRate, int32(i))
		out[SignalHistory][i], out[SignalClicked][i] = h, c
	}
	for _, name := range relative {
		out[name+RelativeSuffix] = relativeTo(out[name])
	}
	return out
}

// accumulate adds the neighbours' weights of the items in hist (newest
// first) into sum and, decayed by position, into recent, and returns
// touched with every item it first made nonzero appended.
func accumulate(neighbors [][]Neighbor, hist []int32, sum, recent []float32, touched []int32) []int32 {
	if neighbors == nil {
		return touched
	}
	for pos, j := range hist {
		decay := float32(math.Exp2(-float64(pos) / RecentHalfLife))
		for _, nb := range neighbors[j] {
			if sum[nb.Item] == 0 && recent[nb.Item] == 0 {
				touched = append(touched, nb.Item)
			}
			sum[nb.Item] += nb.Weight
			recent[nb.Item] += nb.Weight * decay
		}
	}
	return touched
}

// userVector sums the history's vectors into user (Dim floats, overwritten).
func (x *Index) userVector(hist []int32, user []float32) {
	clear(user)
	for _, j := range hist {
		addTo(user, x.Vectors[int(j)*x.Dim:(int(j)+1)*x.Dim])
	}
}

// nearestBlock is how many items the embedding search scores between
// checks of its bound.
const nearestBlock = 64

// nearest is the exact top k allowed items by dot product with the user's
// vector in s, best first (ties: lower index). It visits items by
// descending vector norm and stops once no item left can beat the k-th
// best (a dot product is at most the product of the norms): on a
// long-tailed catalogue, whose rare items have short vectors, it scores a
// small part of it; at worst, all of it.
func (x *Index) nearest(s *scratch, k int, allowed func(int32) bool) []int32 {
	un := float32(math.Sqrt(float64(dot(s.user, s.user)))) * (1 + 1e-5)
	h := &pairHeap{}
	if len(s.block) < nearestBlock {
		s.block = make([]float32, nearestBlock)
	}
	n, d := len(x.byNorm), x.Dim
	for b := 0; b < n; b += nearestBlock {
		if len(h.items) == k && un*x.norms[b] < h.scores[0] {
			break
		}
		e := min(b+nearestBlock, n)
		block := s.block[:e-b]
		scan(s.user, x.normSorted[b*d:e*d], block, d)
		for j, sc := range block {
			if i := x.byNorm[b+j]; allowed(i) {
				h.offer(i, sc, k)
			}
		}
	}
	return h.sorted()
}

// pairHeap keeps the k best (score, then lower item) pairs offered, the
// worst first.
type pairHeap struct {
	items  []int32
	scores []float32
}

func (h *pairHeap) Len() int { return len(h.items) }
func (h *pairHeap) Less(a, b int) bool {
	return h.scores[a] < h.scores[b] || (h.scores[a] == h.scores[b] && h.items[a] > h.items[b])
}
func (h *pairHeap) Swap(a, b int) {
	h.items[a], h.items[b] = h.items[b], h.items[a]
	h.scores[a], h.scores[b] = h.scores[b], h.scores[a]
}
func (h *pairHeap) Push(any) {}
func (h *pairHeap) Pop() any {
	h.items, h.scores = h.items[:len(h.items)-1], h.scores[:len(h.scores)-1]
	return nil
}

func (h *pairHeap) offer(i int32, score float32, k int) {
	if len(h.items) < k {
		h.items, h.scores = append(h.items, i), append(h.scores, score)
		heap.Fix(h, len(h.items)-1)
		return
	}
	if score > h.scores[0] || (score == h.scores[0] && i < h.items[0]) {
		h.items[0], h.scores[0] = i, score
		heap.Fix(h, 0)
	}
}

// sorted returns the items, best first (one sort, cheaper than draining
// the heap).
func (h *pairHeap) sorted() []int32 {
	order := make([]int, len(h.items))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Or(cmp.Compare(h.scores[b], h.scores[a]), cmp.Compare(h.items[a], h.items[b]))
	})
	out := make([]int32, len(order))
	for p, i := range order {
		out[p] = h.items[i]
	}
	return out
}

// scan writes the dot product of user with every dim-sized vector of vecs
// into scores. It is the embedding source's inner loop, over the whole
// catalogue: four items at a time share each load of the user's vector
// and keep four independent sums, which about halves its time.
func scan(user, vecs, scores []float32, dim int) {
	n := len(scores)
	i := 0
	for ; i+4 <= n; i += 4 {
		v := vecs[i*dim : (i+4)*dim]
		v0, v1, v2, v3 := v[:dim], v[dim:2*dim], v[2*dim:3*dim], v[3*dim:4*dim]
		var s0, s1, s2, s3 float32
		for k, u := range user {
			s0 += u * v0[k]
			s1 += u * v1[k]
			s2 += u * v2[k]
			s3 += u * v3[k]
		}
		scores[i], scores[i+1], scores[i+2], scores[i+3] = s0, s1, s2, s3
	}
	for ; i < n; i++ {
		scores[i] = dot(user, vecs[i*dim:(i+1)*dim])
	}
}

func (x *Index) putScratch(s *scratch) {
	for _, i := range s.touched {
		s.i2i[i], s.recent[i] = 0, 0
	}
	for _, i := range s.touchedLiked {
		s.liked[i], s.likedRecent[i] = 0, 0
	}
	for _, list := range [][]int32{s.hist, s.clicked, s.picked} {
		for _, j := range list {
			s.skip[j] = false
		}
	}
	s.touched, s.touchedLiked, s.hist, s.clicked, s.picked = s.touched[:0], s.touchedLiked[:0], s.hist[:0], s.clicked[:0], s.picked[:0]
	x.scratch.Put(s)
}

func at(s []float32, i int32) float32 {
	if s == nil {
		return 0
	}
	return s[i]
}

func addTo(dst, v []float32) {
	for k := range dst {
		dst[k] += v[k]
	}
}

func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s float32
	for k := range a {
		s += a[k] * b[k]
	}
	return s
}

// minHeap keeps the k best (score, then lower index) items seen so far,
// the worst on top.
type minHeap struct {
	items  []int32
	scores []float32
}

func (h *minHeap) Len() int { return len(h.items) }
func (h *minHeap) Less(a, b int) bool {
	sa, sb := h.scores[h.items[a]], h.scores[h.items[b]]
	return sa < sb || (sa == sb && h.items[a] > h.items[b])
}
func (h *minHeap) Swap(a, b int) { h.items[a], h.items[b] = h.items[b], h.items[a] }
func (h *minHeap) Push(v any)    { h.items = append(h.items, v.(int32)) }
func (h *minHeap) Pop() any {
	v := h.items[len(h.items)-1]
	h.items = h.items[:len(h.items)-1]
	return v
}

// better reports whether item i beats the heap's worst.
func (h *minHeap) better(i int32) bool {
	w := h.items[0]
	return h.scores[i] > h.scores[w] || (h.scores[i] == h.scores[w] && i < w)
}

// topK returns the k allowed items of from with the highest scores, best
// first (ties: lower index first).
func topK(from []int32, scores []float32, k int, allowed func(int32) bool) []int32 {
	h := &minHeap{scores: scores, items: make([]int32, 0, k)}
	for _, i := range from {
		if !allowed(i) {
			continue
		}
		// Appended and fixed in place, not heap.Push/Pop: those box each
		// item in an interface, an allocation per candidate.
		if len(h.items) < k {
			h.items = append(h.items, i)
			heap.Fix(h, len(h.items)-1)
		} else if h.better(i) {
			h.items[0] = i
			heap.Fix(h, 0)
		}
	}
	// Best first: one sort, cheaper than draining the heap.
	slices.SortFunc(h.items, func(a, b int32) int {
		return cmp.Or(cmp.Compare(scores[b], scores[a]), cmp.Compare(a, b))
	})
	return h.items
}
