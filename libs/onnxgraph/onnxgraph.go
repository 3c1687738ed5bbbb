// Package onnxgraph writes ONNX models in the ONNX protobuf wire format
// without an ONNX library (the Go ones pull in heavy dependencies that the
// ranking binary must not carry): a graph of nodes over float and int64
// initializers, one float input and one float output with a dynamic batch
// dimension, opset 17.
package onnxgraph

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Opset is the ONNX operator set the models declare.
const Opset = 17

// Graph is a model under construction.
type Graph struct {
	name  string
	nodes [][]byte
	inits [][]byte
	io    [][]byte // inputs then outputs, encoded with their field numbers
}

// New starts a graph.
func New(name string) *Graph { return &Graph{name: name} }

// Input declares a float input [batch, width].
func (g *Graph) Input(name string, width int64) {
	g.io = append(g.io, appendMsg(nil, 11, valueInfo(name, width)))
}

// Output declares a float output [batch, width].
func (g *Graph) Output(name string, width int64) {
	g.io = append(g.io, appendMsg(nil, 12, valueInfo(name, width)))
}

// Floats adds a float initializer.
func (g *Graph) Floats(name string, dims []int64, data []float32) {
	var packed []byte
	for _, v := range data {
		packed = protowire.AppendFixed32(packed, math.Float32bits(v))
	}
	g.inits = append(g.inits, tensor(name, dims, 1, 4, packed))
}

// Int64s adds an int64 initializer (shapes, slice bounds).
func (g *Graph) Int64s(name string, dims []int64, data []int64) {
	var packed []byte
	for _, v := range data {
		packed = protowire.AppendVarint(packed, uint64(v))
	}
	g.inits = append(g.inits, tensor(name, dims, 7, 7, packed))
}

// Attr is a node attribute.
type Attr struct {
	Name string
	Int  int64
	Ints []int64
	// Float, when IsFloat, is a float attribute instead.
	Float   float32
	IsFloat bool
}

// Node adds an operator.
func (g *Graph) Node(op, name string, inputs, outputs []string, attrs ...Attr) {
	var b []byte
	for _, in := range inputs {
		b = appendString(b, 1, in)
	}
	for _, out := range outputs {
		b = appendString(b, 2, out)
	}
	b = appendString(b, 3, name)
	b = appendString(b, 4, op)
	for _, a := range attrs {
		var ab []byte
		ab = appendString(ab, 1, a.Name)
		switch {
		case a.IsFloat:
			ab = protowire.AppendTag(ab, 2, protowire.Fixed32Type)
			ab = protowire.AppendFixed32(ab, math.Float32bits(a.Float))
			ab = appendVarint(ab, 20, 1) // FLOAT
		case a.Ints != nil:
			for _, v := range a.Ints {
				ab = appendVarint(ab, 8, uint64(v))
			}
			ab = appendVarint(ab, 20, 7) // INTS
		default:
			ab = appendVarint(ab, 3, uint64(a.Int))
			ab = appendVarint(ab, 20, 2) // INT
		}
		b = appendMsg(b, 5, ab)
	}
	g.nodes = append(g.nodes, b)
}

// Bytes returns the model.
func (g *Graph) Bytes(producer string) []byte {
	var graph []byte
	for _, n := range g.nodes {
		graph = appendMsg(graph, 1, n)
	}
	graph = appendString(graph, 2, g.name)
	for _, t := range g.inits {
		graph = appendMsg(graph, 5, t)
	}
	for _, io := range g.io {
		graph = append(graph, io...)
	}
	var model []byte
	model = appendVarint(model, 1, 8) // IR version 8
	model = appendString(model, 2, producer)
	model = appendMsg(model, 7, graph)
	model = appendMsg(model, 8, appendVarint(nil, 2, Opset))
	return model
}

func appendMsg(b []byte, field protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

func appendString(b []byte, field protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, field protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, field, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// tensor encodes a TensorProto with packed data in the given field.
func tensor(name string, dims []int64, dataType uint64, dataField protowire.Number, packed []byte) []byte {
	var b []byte
	for _, d := range dims {
		b = appendVarint(b, 1, uint64(d))
	}
	b = appendVarint(b, 2, dataType)
	b = appendMsg(b, dataField, packed)
	return appendString(b, 8, name)
}

// valueInfo is a float tensor [batch, width].
func valueInfo(name string, width int64) []byte {
	shape := appendMsg(nil, 1, appendString(nil, 2, "batch"))
	shape = appendMsg(shape, 1, appendVarint(nil, 1, uint64(width)))
	tt := appendVarint(nil, 1, 1) // FLOAT
	tt = appendMsg(tt, 2, shape)
	b := appendString(nil, 1, name)
	return appendMsg(b, 2, appendMsg(nil, 1, tt))
}
