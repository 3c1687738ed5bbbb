package modeltest

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/recsys/recsys/libs/onnxgraph"
)

// MLP has the shape of the trainer's exported model (services/trainer,
// Model.ONNX), node for node, so that tests of the runtime exercise the
// operators production models use: dense columns picked with Gather; each
// hashed id column cast to int64 and looked up in its embedding table
// (Gather → Cast → Gather → Flatten); Concat; two Gemm+Relu layers and a
// Gemm+Sigmoid. Opset 17, dynamic batch, input "features" [batch, Width],
// output "score" [batch, 1]. libs cannot import the trainer (a service
// module), hence this copy of its graph.
type MLP struct {
	Width  int
	Dense  []int // columns fed to the MLP as they are
	Sparse []int // columns holding an embedding row index
	Rows   int   // embedding rows per table
	Dim    int   // embedding size
	H1, H2 int

	Emb    [][]float32 // per sparse column: Rows×Dim
	W1, B1 []float32   // H1 × In
	W2, B2 []float32   // H2 × H1
	W3     []float32   // H2
	B3     float32
}

// NewMLP is a trainer-sized model (9 columns of which 3 hashed ids,
// embeddings of 8, layers of 32 and 16 as the trainer's defaults) with
// weights drawn from seed.
func NewMLP(seed uint64) MLP {
	m := MLP{Width: 9, Dense: []int{2, 3, 4, 5, 6, 7}, Sparse: []int{0, 1, 8}, Rows: 10000, Dim: 8, H1: 32, H2: 16}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	uniform := func(n int, scale float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32((rng.Float64()*2 - 1) * scale)
		}
		return out
	}
	for range m.Sparse {
		m.Emb = append(m.Emb, uniform(m.Rows*m.Dim, 0.5))
	}
	in := m.In()
	m.W1, m.B1 = uniform(m.H1*in, math.Sqrt(6/float64(in))), uniform(m.H1, 0.1)
	m.W2, m.B2 = uniform(m.H2*m.H1, math.Sqrt(6/float64(m.H1))), uniform(m.H2, 0.1)
	m.W3, m.B3 = uniform(m.H2, math.Sqrt(6/float64(m.H2))), 0.1
	return m
}

// In is the MLP's input size after the embedding lookups.
func (m MLP) In() int { return len(m.Dense) + len(m.Sparse)*m.Dim }

// RandomRows returns n rows (row-major) the model accepts: dense columns
// in [-2, 2), id columns whole numbers in [0, Rows).
func (m MLP) RandomRows(n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 0x0a75))
	rows := make([]float32, n*m.Width)
	for r := range n {
		row := rows[r*m.Width : (r+1)*m.Width]
		for _, c := range m.Dense {
			row[c] = float32(rng.Float64()*4 - 2)
		}
		for _, c := range m.Sparse {
			row[c] = float32(rng.IntN(m.Rows))
		}
	}
	return rows
}

// Score is the reference forward pass for one row, in float64.
func (m MLP) Score(row []float32) float64 {
	x := make([]float64, 0, m.In())
	for _, c := range m.Dense {
		x = append(x, float64(row[c]))
	}
	for s, c := range m.Sparse {
		id := int(row[c])
		for _, v := range m.Emb[s][id*m.Dim : (id+1)*m.Dim] {
			x = append(x, float64(v))
		}
	}
	layer := func(in []float64, w, b []float32, out int) []float64 {
		h := make([]float64, out)
		for i := range h {
			z := float64(b[i])
			for j, v := range in {
				z += float64(w[i*len(in)+j]) * v
			}
			h[i] = max(z, 0)
		}
		return h
	}
	h2 := layer(layer(x, m.W1, m.B1, m.H1), m.W2, m.B2, m.H2)
	z := float64(m.B3)
	for j, v := range h2 {
		z += float64(m.W3[j]) * v
	}
	return 1 / (1 + math.Exp(-z))
}

// ONNX returns the model's bytes, written as the trainer writes its own.
func (m MLP) ONNX() []byte {
	g := onnxgraph.New("mlp")
	g.Input("features", int64(m.Width))
	g.Output("score", 1)
	idx := make([]int64, len(m.Dense))
	for i, c := range m.Dense {
		idx[i] = int64(c)
	}
	g.Int64s("dense_idx", []int64{int64(len(idx))}, idx)
	g.Node("Gather", "dense", []string{"features", "dense_idx"}, []string{"dense"}, onnxgraph.Attr{Name: "axis", Int: 1})
	parts := []string{"dense"}
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
	g.Floats("W1", []int64{int64(m.H1), int64(m.In())}, m.W1)
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
	return g.Bytes("modeltest")
}
