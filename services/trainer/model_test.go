package trainer

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/recsys/recsys/libs/modelrt"
)

func testMeta() *modelrt.Metadata {
	return &modelrt.Metadata{
		Input: "features", Output: "score", Hashing: modelrt.Hashing{Salt: "t", Buckets: 97},
		Features: []modelrt.Feature{
			{Name: "user", Source: "user_id", Transform: "hash"},
			{Name: "ctr", Source: "item.ctr", Default: 0.05},
			{Name: "item", Source: "item_id", Transform: "hash"},
			{Name: "aff", Source: "user_item.category_affinity", Transform: "log1p"},
			{Name: "cat", Source: "item.category", Transform: "hash"},
		},
	}
}

// TestONNXMatchesGo exports a trained model and checks ONNX Runtime's
// scores against the Go forward pass on the same rows.
func TestONNXMatchesGo(t *testing.T) {
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}
	meta := testMeta()
	m := NewModel(meta, 4, 16, 8, 1)
	rng := rand.New(rand.NewPCG(3, 4))
	n := 300
	rows := make([]float32, n*m.Width)
	labels := make([]float32, n)
	for r := range n {
		row := rows[r*m.Width : (r+1)*m.Width]
		row[0], row[2], row[4] = float32(rng.IntN(97)), float32(rng.IntN(97)), float32(rng.IntN(97))
		row[1], row[3] = rng.Float32(), rng.Float32()*3
		if row[3] > 1.5 {
			labels[r] = 1
		}
	}
	m.Train(rows, labels, TrainOptions{Epochs: 3, BatchSize: 32, LR: 0.01, Seed: 1})

	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(path, m.ONNX("test"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := modelrt.CheckIO(path, meta); err != nil {
		t.Fatalf("exported model does not match its metadata: %v", err)
	}
	s, err := modelrt.OpenSession(path, "features", "score", m.Width, modelrt.SessionOptions{Provider: modelrt.CPU, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Run(rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := m.Predict(rows)
	worst := 0.0
	for i := range want {
		worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
	}
	if worst > 1e-5 {
		t.Errorf("ONNX Runtime and the Go forward pass differ by up to %g, want ≤ 1e-5", worst)
	}
	t.Logf("largest difference %g over %d rows", worst, n)
}

func TestTrainingLearns(t *testing.T) {
	meta := testMeta()
	m := NewModel(meta, 4, 16, 8, 2)
	rng := rand.New(rand.NewPCG(5, 6))
	n := 4000
	rows := make([]float32, n*m.Width)
	labels := make([]float32, n)
	for r := range n {
		row := rows[r*m.Width : (r+1)*m.Width]
		row[0], row[2], row[4] = float32(rng.IntN(97)), float32(rng.IntN(97)), float32(rng.IntN(5))
		row[1], row[3] = rng.Float32(), rng.Float32()
		// Clicks depend on a dense feature and on an id.
		if row[3]+0.5*float32(int(row[4])%2) > 0.9 {
			labels[r] = 1
		}
	}
	first := m.Train(rows, labels, TrainOptions{Epochs: 1, BatchSize: 64, LR: 0.01, Seed: 1})
	last := m.Train(rows, labels, TrainOptions{Epochs: 5, BatchSize: 64, LR: 0.01, Seed: 1})
	if !(last < first*0.7) {
		t.Errorf("loss went from %.4f to %.4f; want it to fall by 30%%", first, last)
	}
}

// TestEnsembleAveragesLogits checks that the merged model's logit is the
// mean of its members' on random rows.
func TestEnsembleAveragesLogits(t *testing.T) {
	meta := RankerMetadata("ctr", "t")
	var members []*Model
	for k := range 3 {
		members = append(members, NewModel(meta, 4, 8, 4, uint64(k+1)))
	}
	m := ensemble(members)
	rng := rand.New(rand.NewPCG(5, 6))
	row := make([]float32, len(meta.Features))
	a, am := m.newActivations(), members[0].newActivations()
	for range 50 {
		for i := range row {
			row[i] = float32(rng.NormFloat64())
		}
		m.forward(row, a)
		want := 0.0
		for _, mem := range members {
			mem.forward(row, am)
			want += float64(am.z) / 3
		}
		if math.Abs(float64(a.z)-want) > 1e-5 {
			t.Fatalf("ensemble logit %v, want the members' mean %v", a.z, want)
		}
	}
}

// TestCalibrateFitsTheBaseRate checks Platt scaling on a model whose
// logit says nothing: the calibrated score is the labels' mean.
func TestCalibrateFitsTheBaseRate(t *testing.T) {
	meta := RankerMetadata("ctr", "t")
	m := NewModel(meta, 4, 8, 4, 1)
	clear(m.W3)
	rows := make([]float32, 200*m.Width)
	labels := make([]float32, 200)
	for r := range 50 {
		labels[r] = 1
	}
	m.calibrate(rows, labels)
	a := m.newActivations()
	if p := m.forward(rows[:m.Width], a); math.Abs(float64(p)-0.25) > 1e-4 {
		t.Errorf("calibrated score %v, want the base rate 0.25", p)
	}
}
