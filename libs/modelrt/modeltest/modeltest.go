// Package modeltest writes small ONNX models straight in the ONNX protobuf
// wire format (no ONNX library, nothing of the project's trainer), with a
// metadata.json, for tests of the model runtime and the ranking service.
package modeltest

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
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
	width := int64(len(l.W))
	var graph []byte
	graph = appendMsg(graph, 1, node("gemm", "Gemm", []string{"features", "W", "B"}, []string{"z"}))
	graph = appendMsg(graph, 1, node("sigmoid", "Sigmoid", []string{"z"}, []string{"score"}))
	graph = protowire.AppendTag(graph, 2, protowire.BytesType)
	graph = protowire.AppendString(graph, "logistic")
	graph = appendMsg(graph, 5, tensor("W", []int64{width, 1}, l.W))
	graph = appendMsg(graph, 5, tensor("B", []int64{1}, []float32{l.B}))
	graph = appendMsg(graph, 11, valueInfo("features", "batch", width))
	graph = appendMsg(graph, 12, valueInfo("score", "batch", 1))

	var model []byte
	model = protowire.AppendTag(model, 1, protowire.VarintType)
	model = protowire.AppendVarint(model, 8) // IR version 8
	model = protowire.AppendTag(model, 2, protowire.BytesType)
	model = protowire.AppendString(model, "modeltest")
	model = appendMsg(model, 7, graph)
	var opset []byte
	opset = protowire.AppendTag(opset, 2, protowire.VarintType)
	opset = protowire.AppendVarint(opset, 17)
	model = appendMsg(model, 8, opset)
	return model
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

func appendMsg(b []byte, field protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

func node(name, op string, inputs, outputs []string) []byte {
	var b []byte
	for _, in := range inputs {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, in)
	}
	for _, out := range outputs {
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, out)
	}
	b = protowire.AppendTag(b, 3, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, 4, protowire.BytesType)
	return protowire.AppendString(b, op)
}

func tensor(name string, dims []int64, data []float32) []byte {
	var b []byte
	for _, d := range dims {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d))
	}
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, 1) // FLOAT
	var packed []byte
	for _, v := range data {
		packed = protowire.AppendFixed32(packed, math.Float32bits(v))
	}
	b = appendMsg(b, 4, packed)
	b = protowire.AppendTag(b, 8, protowire.BytesType)
	return protowire.AppendString(b, name)
}

// valueInfo is a float tensor [batchParam, width].
func valueInfo(name, batchParam string, width int64) []byte {
	var batch, w, shape, tt, typ, b []byte
	batch = protowire.AppendTag(batch, 2, protowire.BytesType)
	batch = protowire.AppendString(batch, batchParam)
	w = protowire.AppendTag(w, 1, protowire.VarintType)
	w = protowire.AppendVarint(w, uint64(width))
	shape = appendMsg(shape, 1, batch)
	shape = appendMsg(shape, 1, w)
	tt = protowire.AppendTag(tt, 1, protowire.VarintType)
	tt = protowire.AppendVarint(tt, 1) // FLOAT
	tt = appendMsg(tt, 2, shape)
	typ = appendMsg(typ, 1, tt)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, name)
	return appendMsg(b, 2, typ)
}
