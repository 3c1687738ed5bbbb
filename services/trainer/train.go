package trainer

import (
	"math"
	"math/rand/v2"
)

// TrainOptions are the optimiser's settings.
type TrainOptions struct {
	Epochs    int
	BatchSize int
	LR        float64
	Seed      uint64
	// Progress, when set, is told after every batch how many rows are done.
	Progress func(rows int)
	// EpochDone, when set, is told each epoch's mean loss.
	EpochDone func(epoch int, loss float64)
	// Groups, when set, makes the loss pairwise (BPR): rows
	// Groups[g]..Groups[g+1]-1 are one user's candidates, and each
	// relevant row is trained to score above Negatives irrelevant rows
	// of the same user, drawn at random each epoch. Ranking within a user
	// is what the model is for; the pairwise loss does not spend capacity
	// on how users differ from each other.
	Groups    []int
	Negatives int
}

// adam holds Adam's moments for one parameter slice.
type adam struct{ m, v []float32 }

func newAdam(n int) *adam { return &adam{m: make([]float32, n), v: make([]float32, n)} }

const beta1, beta2, eps = 0.9, 0.999, 1e-8

// step applies Adam to p[i] for the indices with a gradient (lazy for
// embeddings: rows not in the batch keep their moments).
func (o *adam) step(p, g []float32, idx []int, lr float64, t int) {
	c1 := 1 - math.Pow(beta1, float64(t))
	c2 := 1 - math.Pow(beta2, float64(t))
	upd := func(i int) {
		gi := float64(g[i])
		o.m[i] = float32(beta1*float64(o.m[i]) + (1-beta1)*gi)
		o.v[i] = float32(beta2*float64(o.v[i]) + (1-beta2)*gi*gi)
		p[i] -= float32(lr * (float64(o.m[i]) / c1) / (math.Sqrt(float64(o.v[i])/c2) + eps))
		g[i] = 0
	}
	if idx == nil {
		for i := range p {
			upd(i)
		}
		return
	}
	for _, i := range idx {
		upd(i)
	}
}

// Train fits the model to rows (Width floats each) and labels (0 or 1) by
// minimising binary cross-entropy with Adam, and returns the mean loss of
// the last epoch.
func (m *Model) Train(rows []float32, labels []float32, o TrainOptions) float64 {
	n := len(labels)
	in := m.In()
	gW1, gB1 := make([]float32, len(m.W1)), make([]float32, len(m.B1))
	gW2, gB2 := make([]float32, len(m.W2)), make([]float32, len(m.B2))
	gW3 := make([]float32, len(m.W3))
	var gB3 float32
	gEmb := make([][]float32, len(m.Emb))
	oEmb := make([]*adam, len(m.Emb))
	for s := range m.Emb {
		gEmb[s] = make([]float32, len(m.Emb[s]))
		oEmb[s] = newAdam(len(m.Emb[s]))
	}
	oW1, oB1, oW2, oB2, oW3 := newAdam(len(m.W1)), newAdam(len(m.B1)), newAdam(len(m.W2)), newAdam(len(m.B2)), newAdam(len(m.W3))
	oB3 := newAdam(1)

	a := m.newActivations()
	dh1, dh2, dx := make([]float32, m.H1), make([]float32, m.H2), make([]float32, in)
	rng := rand.New(rand.NewPCG(o.Seed, 1))
	touched := make([]map[int]bool, len(m.Emb))
	row := func(r int) []float32 { return rows[r*m.Width : (r+1)*m.Width] }
	// backward adds the gradient of the row whose forward pass is in a,
	// given d loss / d logit.
	backward := func(dz float32) {
		// Output layer.
		for j := range m.H2 {
			gW3[j] += dz * a.h2[j]
			dh2[j] = dz * m.W3[j]
			if a.h2[j] <= 0 {
				dh2[j] = 0
			}
		}
		gB3 += dz
		// Second layer.
		clear(dh1)
		for i := range m.H2 {
			if dh2[i] == 0 {
				continue
			}
			gB2[i] += dh2[i]
			w := m.W2[i*m.H1 : (i+1)*m.H1]
			gw := gW2[i*m.H1 : (i+1)*m.H1]
			for j := range m.H1 {
				gw[j] += dh2[i] * a.h1[j]
				dh1[j] += dh2[i] * w[j]
			}
		}
		// First layer.
		clear(dx)
		for i := range m.H1 {
			if a.h1[i] <= 0 || dh1[i] == 0 {
				continue
			}
			gB1[i] += dh1[i]
			w := m.W1[i*in : (i+1)*in]
			gw := gW1[i*in : (i+1)*in]
			for j := range in {
				gw[j] += dh1[i] * a.x[j]
				dx[j] += dh1[i] * w[j]
			}
		}
		// Embeddings.
		for s, id := range a.ids {
			off := len(m.Dense) + s*m.Dim
			ge := gEmb[s][id*m.Dim : (id+1)*m.Dim]
			for k := range m.Dim {
				ge[k] += dx[off+k]
			}
			touched[s][id] = true
		}
	}
	// A unit is a row (pointwise) or a (relevant, irrelevant) pair of
	// rows of one user (pairwise).
	type unit struct{ pos, neg int }
	var units []unit
	drawUnits := func() {
		units = units[:0]
		if o.Groups == nil {
			for r := range n {
				units = append(units, unit{pos: r, neg: -1})
			}
			return
		}
		var pos, neg []int
		for g := 0; g+1 < len(o.Groups); g++ {
			pos, neg = pos[:0], neg[:0]
			for r := o.Groups[g]; r < o.Groups[g+1]; r++ {
				if labels[r] > 0 {
					pos = append(pos, r)
				} else {
					neg = append(neg, r)
				}
			}
			if len(neg) == 0 {
				continue
			}
			for _, p := range pos {
				for range max(o.Negatives, 1) {
					units = append(units, unit{pos: p, neg: neg[rng.IntN(len(neg))]})
				}
			}
		}
	}
	t := 0
	var loss float64
	for epoch := range o.Epochs {
		drawUnits()
		rng.Shuffle(len(units), func(i, j int) { units[i], units[j] = units[j], units[i] })
		loss = 0
		for start := 0; start < len(units); start += o.BatchSize {
			end := min(start+o.BatchSize, len(units))
			scale := float32(1) / float32(end-start)
			for s := range touched {
				touched[s] = map[int]bool{}
			}
			for _, u := range units[start:end] {
				if u.neg < 0 {
					p := m.forward(row(u.pos), a)
					y := labels[u.pos]
					pp := math.Min(math.Max(float64(p), 1e-7), 1-1e-7)
					loss -= float64(y)*math.Log(pp) + float64(1-y)*math.Log(1-pp)
					backward((p - y) * scale) // d loss / d logit
					continue
				}
				// -log σ(z⁺ - z⁻): the gradient is ∓σ(z⁻ - z⁺).
				m.forward(row(u.pos), a)
				zp := a.z
				m.forward(row(u.neg), a)
				diff := float64(a.z - zp)
				loss += math.Log1p(math.Exp(min(diff, 30))) + max(diff-30, 0)
				g := float32(1/(1+math.Exp(-diff))) * scale
				backward(g)
				m.forward(row(u.pos), a)
				backward(-g)
			}
			t++
			oW1.step(m.W1, gW1, nil, o.LR, t)
			oB1.step(m.B1, gB1, nil, o.LR, t)
			oW2.step(m.W2, gW2, nil, o.LR, t)
			oB2.step(m.B2, gB2, nil, o.LR, t)
			oW3.step(m.W3, gW3, nil, o.LR, t)
			b3 := []float32{m.B3}
			oB3.step(b3, []float32{gB3}, nil, o.LR, t)
			m.B3, gB3 = b3[0], 0
			for s := range m.Emb {
				idx := make([]int, 0, len(touched[s])*m.Dim)
				for id := range touched[s] {
					for k := range m.Dim {
						idx = append(idx, id*m.Dim+k)
					}
				}
				oEmb[s].step(m.Emb[s], gEmb[s], idx, o.LR, t)
			}
			if o.Progress != nil {
				o.Progress(end - start)
			}
		}
		loss /= float64(max(len(units), 1))
		if o.EpochDone != nil {
			o.EpochDone(epoch, loss)
		}
	}
	return loss
}
