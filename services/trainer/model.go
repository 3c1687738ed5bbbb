package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/onnxgraph"
)

// Model is a DLRM-style click model over the rows that metadata.json
// describes: the columns with a hash transform index embedding tables (one
// per column), the others are dense; dense values and embeddings are
// concatenated and go through an MLP with two ReLU layers to a sigmoid.
// A Model is not safe for concurrent training.
type Model struct {
	Dense  []int // column index of each dense feature
	Sparse []int // column index of each hashed feature
	Width  int   // columns per row
	Rows   int   // embedding rows per table (id_hashing.buckets)
	Dim    int   // embedding size
	H1, H2 int

	Emb    [][]float32 // per sparse column: Rows×Dim
	W1, B1 []float32   // H1 × In
	W2, B2 []float32   // H2 × H1
	W3     []float32   // H2
	B3     float32
}

// In is the MLP's input size.
func (m *Model) In() int { return len(m.Dense) + len(m.Sparse)*m.Dim }

// NewModel lays out a model for the metadata's features, initialised from
// seed (He-uniform for the layers, small uniform embeddings).
func NewModel(meta *modelrt.Metadata, dim, h1, h2 int, seed uint64) *Model {
	m := &Model{Width: len(meta.Features), Rows: max(meta.Hashing.Buckets, 1), Dim: dim, H1: h1, H2: h2}
	for i, f := range meta.Features {
		if f.Transform == "hash" {
			m.Sparse = append(m.Sparse, i)
		} else {
			m.Dense = append(m.Dense, i)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	uniform := func(n int, scale float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32((rng.Float64()*2 - 1) * scale)
		}
		return out
	}
	for range m.Sparse {
		m.Emb = append(m.Emb, uniform(m.Rows*dim, 0.05))
	}
	in := m.In()
	m.W1, m.B1 = uniform(h1*in, math.Sqrt(6/float64(in))), make([]float32, h1)
	m.W2, m.B2 = uniform(h2*h1, math.Sqrt(6/float64(h1))), make([]float32, h2)
	m.W3 = uniform(h2, math.Sqrt(6/float64(h2)))
	return m
}

// activations of one row, kept for the backward pass.
type activations struct {
	x, h1, h2 []float32
	ids       []int
	z, p      float32 // logit and score
}

func (m *Model) newActivations() *activations {
	return &activations{x: make([]float32, m.In()), h1: make([]float32, m.H1), h2: make([]float32, m.H2), ids: make([]int, len(m.Sparse))}
}

// forward scores one row into a.
func (m *Model) forward(row []float32, a *activations) float32 {
	in := m.In()
	for j, c := range m.Dense {
		a.x[j] = row[c]
	}
	for s, c := range m.Sparse {
		id := int(row[c])
		if id < 0 || id >= m.Rows {
			id = 0
		}
		a.ids[s] = id
		copy(a.x[len(m.Dense)+s*m.Dim:], m.Emb[s][id*m.Dim:(id+1)*m.Dim])
	}
	for i := range m.H1 {
		z := m.B1[i]
		w := m.W1[i*in : (i+1)*in]
		for j, x := range a.x {
			z += w[j] * x
		}
		a.h1[i] = max(z, 0)
	}
	for i := range m.H2 {
		z := m.B2[i]
		w := m.W2[i*m.H1 : (i+1)*m.H1]
		for j, h := range a.h1 {
			z += w[j] * h
		}
		a.h2[i] = max(z, 0)
	}
	z := m.B3
	for j, h := range a.h2 {
		z += m.W3[j] * h
	}
	a.z, a.p = z, float32(1/(1+math.Exp(-float64(z))))
	return a.p
}

// Predict scores rows (row-major, Width floats each) in Go: the reference
// the exported ONNX model must match.
func (m *Model) Predict(rows []float32) []float32 {
	a := m.newActivations()
	out := make([]float32, len(rows)/m.Width)
	for r := range out {
		out[r] = m.forward(rows[r*m.Width:(r+1)*m.Width], a)
	}
	return out
}

// ONNX exports the model: opset 17, dynamic batch, input "features"
// [batch, Width], output "score" [batch, 1].
func (m *Model) ONNX(name string) []byte {
	g := onnxgraph.New(name)
	g.Input("features", int64(m.Width))
	g.Output("score", 1)
	var parts []string
	if len(m.Dense) > 0 {
		idx := make([]int64, len(m.Dense))
		for i, c := range m.Dense {
			idx[i] = int64(c)
		}
		g.Int64s("dense_idx", []int64{int64(len(idx))}, idx)
		g.Node("Gather", "dense", []string{"features", "dense_idx"}, []string{"dense"}, onnxgraph.Attr{Name: "axis", Int: 1})
		parts = append(parts, "dense")
	}
	for s, c := range m.Sparse {
		p := fmt.Sprintf("s%d", s)
		g.Int64s(p+"_col", []int64{1}, []int64{int64(c)})
		g.Floats(p+"_emb", []int64{int64(m.Rows), int64(m.Dim)}, m.Emb[s])
		g.Node("Gather", p+"_pick", []string{"features", p + "_col"}, []string{p + "_f"}, onnxgraph.Attr{Name: "axis", Int: 1})
		g.Node("Cast", p+"_cast", []string{p + "_f"}, []string{p + "_i"}, onnxgraph.Attr{Name: "to", Int: 7}) // INT64
		g.Node("Gather", p+"_lookup", []string{p + "_emb", p + "_i"}, []string{p + "_e3"}, onnxgraph.Attr{Name: "axis", Int: 0})
		g.Node("Flatten", p+"_flat", []string{p + "_e3"}, []string{p + "_e"}, onnxgraph.Attr{Name: "axis", Int: 1})
		parts = append(parts, p+"_e")
	}
	g.Node("Concat", "concat", parts, []string{"x"}, onnxgraph.Attr{Name: "axis", Int: 1})
	in := int64(m.In())
	g.Floats("W1", []int64{int64(m.H1), in}, m.W1)
	g.Floats("B1", []int64{int64(m.H1)}, m.B1)
	g.Floats("W2", []int64{int64(m.H2), int64(m.H1)}, m.W2)
	g.Floats("B2", []int64{int64(m.H2)}, m.B2)
	g.Floats("W3", []int64{1, int64(m.H2)}, m.W3)
	g.Floats("B3", []int64{1}, []float32{m.B3})
	transB := onnxgraph.Attr{Name: "transB", Int: 1}
	g.Node("Gemm", "fc1", []string{"x", "W1", "B1"}, []string{"z1"}, transB)
	g.Node("Relu", "relu1", []string{"z1"}, []string{"h1"})
	g.Node("Gemm", "fc2", []string{"h1", "W2", "B2"}, []string{"z2"}, transB)
	g.Node("Relu", "relu2", []string{"z2"}, []string{"h2"})
	g.Node("Gemm", "fc3", []string{"h2", "W3", "B3"}, []string{"z3"}, transB)
	g.Node("Sigmoid", "sigmoid", []string{"z3"}, []string{"score"})
	return g.Bytes("recsys-trainer")
}
