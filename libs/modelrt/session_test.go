package modelrt

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/recsys/recsys/libs/modelrt/modeltest"
)

// needORT initialises ONNX Runtime or skips the test saying why.
func needORT(t testing.TB) {
	t.Helper()
	if err := Init(LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}
}

func writeModel(t testing.TB, l modeltest.Logistic) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(p, l.ONNX(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSessionMatchesReference(t *testing.T) {
	needORT(t)
	l := modeltest.Logistic{W: []float32{0.5, -1.25, 2, 0.1}, B: -0.3}
	path := writeModel(t, l)
	s, err := OpenSession(path, "features", "score", 4, SessionOptions{Provider: CPU, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows := []float32{1, 2, 3, 4, 0, 0, 0, 0, -1, 0.5, 0.25, 10}
	got, err := s.Run(rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		want := l.Score(rows[i*4 : i*4+4])
		if math.Abs(float64(got[i])-want) > 1e-5 {
			t.Errorf("row %d: score %v, want %v", i, got[i], want)
		}
	}
	if _, err := s.Run(rows[:5], nil); err == nil {
		t.Error("Run(5 floats of 4-float rows) succeeded, want an error")
	}
}

// TestMLPMatchesReference checks the trainer-shaped test model on the CPU,
// so that a TestCUDA failure on a GPU machine points at CUDA, not at it.
func TestMLPMatchesReference(t *testing.T) {
	needORT(t)
	m := modeltest.NewMLP(1)
	p := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(p, m.ONNX(), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSession(p, "features", "score", m.Width, SessionOptions{Provider: CPU, IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rows := m.RandomRows(100, 7)
	got, err := s.Run(rows, nil)
	if err != nil {
		t.Fatal(err)
	}
	spread := map[bool]int{}
	for i := range 100 {
		want := m.Score(rows[i*m.Width : (i+1)*m.Width])
		if math.Abs(float64(got[i])-want) > 1e-5 {
			t.Errorf("row %d: score %v, want %v", i, got[i], want)
		}
		spread[want > 0.5]++
	}
	// Scores on both sides of 0.5: the rows reach the embeddings and
	// layers rather than saturating the sigmoid.
	if spread[true] == 0 || spread[false] == 0 {
		t.Errorf("scores all on one side of 0.5 (%v): the test model is degenerate", spread)
	}
}

func TestAutoFallsBackToCPU(t *testing.T) {
	needORT(t)
	path := writeModel(t, modeltest.Logistic{W: []float32{1}, B: 0})
	s, err := OpenSession(path, "features", "score", 1, SessionOptions{Provider: Auto})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Logf("auto chose %s (%s)", s.Provider(), s.FallbackReason)
	if s.Provider() == CUDA {
		return
	}
	// The reason names what is missing, and ONNX Runtime was not asked
	// when a library is missing (it would log an error to stderr).
	switch {
	case !fileExists(filepath.Join(libDir, cudaProviderLibrary)):
		if want := cudaProviderLibrary + " is missing"; !strings.Contains(s.FallbackReason, want) || !strings.Contains(s.FallbackReason, "make ort-gpu") {
			t.Errorf("fallback reason %q, want it to say %q and name make ort-gpu", s.FallbackReason, want)
		}
	case canLoad(cudaDriverLibrary) != "":
		if !strings.Contains(s.FallbackReason, "NVIDIA driver: "+cudaDriverLibrary) {
			t.Errorf("fallback reason %q does not name the missing driver", s.FallbackReason)
		}
	default:
		if !strings.Contains(s.FallbackReason, "CUDA libraries:") && !strings.Contains(s.FallbackReason, "no usable GPU") {
			t.Errorf("fallback reason %q names neither the CUDA libraries nor the device", s.FallbackReason)
		}
	}
}

func TestCheckIO(t *testing.T) {
	needORT(t)
	path := writeModel(t, modeltest.Logistic{W: []float32{1, 2, 3}})
	good := &Metadata{Input: "features", Output: "score", Features: make([]Feature, 3)}
	if err := CheckIO(path, good); err != nil {
		t.Errorf("CheckIO(matching metadata) = %v", err)
	}
	for name, m := range map[string]*Metadata{
		"wrong width":  {Input: "features", Output: "score", Features: make([]Feature, 4)},
		"wrong input":  {Input: "x", Output: "score", Features: make([]Feature, 3)},
		"wrong output": {Input: "features", Output: "y", Features: make([]Feature, 3)},
	} {
		if err := CheckIO(path, m); err == nil {
			t.Errorf("CheckIO(%s) = nil, want an error", name)
		}
	}
}
