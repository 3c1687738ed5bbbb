// Package modeltest writes small ONNX models (through onnxgraph, nothing of
// the project's trainer) with a metadata.json, for tests of the model
// runtime and the ranking service.
package modeltest

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/recsys/recsys/libs/onnxgraph"
)

// Logistic is the model sigmoid(x·W + B) over rows of len(W) floats: an
// ONNX graph Gemm → Sigmoid, opset 17, dynamic batch, input "features"
// [batch, len(W)], output "score" [batch, 1].
type Logistic struct {
	W []float32
	B float32
}

// Score is the reference computation, in float64.
func (l Logistic) Score(row []float32) float64 {
	z := float64(l.B)
	for i, w := range l.W {
		z += float64(w) * float64(row[i])
	}
	return 1 / (1 + math.Exp(-z))
}

// ONNX returns the model's bytes.
func (l Logistic) ONNX() []byte {
	g := onnxgraph.New("logistic")
	width := int64(len(l.W))
	g.Input("features", width)
	g.Output("score", 1)
	g.Floats("W", []int64{width, 1}, l.W)
	g.Floats("B", []int64{1}, []float32{l.B})
	g.Node("Gemm", "gemm", []string{"features", "W", "B"}, []string{"z"})
	g.Node("Sigmoid", "sigmoid", []string{"z"}, []string{"score"})
	return g.Bytes("modeltest")
}

// Metadata returns the metadata.json content for the model with the given
// feature list (len(W) entries).
func (l Logistic) Metadata(name, version string, created time.Time, features []map[string]any) []byte {
	m := map[string]any{
		"name": name, "version": version, "input_name": "features", "output_name": "score",
		"features": features, "id_hashing": map[string]any{"salt": "t", "buckets": 1000},
		"metrics": map[string]float64{"auc": 0.5}, "created_at": created,
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return b
}

// Publish writes root/name/version/{model.onnx,metadata.json} the way a
// publisher should: into a temporary folder renamed into place at once.
func Publish(root, name, version string, onnx, metadata []byte) error {
	dir := filepath.Join(root, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, ".publish-")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "model.onnx"), onnx, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "metadata.json"), metadata, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, version))
}
