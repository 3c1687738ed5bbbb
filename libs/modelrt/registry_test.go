package modelrt

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recsys/recsys/libs/modelrt/modeltest"
	"github.com/recsys/recsys/libs/testenv"
)

func publish(t *testing.T, root, version string, l modeltest.Logistic, created time.Time) {
	t.Helper()
	feats := []map[string]any{{"name": "x", "source": "item.ctr", "default": 0.05}, {"name": "y", "source": "user.ctr", "default": 0.05}}
	if err := modeltest.Publish(root, "ctr", version, l.ONNX(), l.Metadata("ctr", version, created, feats)); err != nil {
		t.Fatal(err)
	}
}

func TestRegistry(t *testing.T) {
	needORT(t)
	root := t.TempDir()
	r := NewRegistry(RegistryConfig{Root: root, Name: "ctr", Session: SessionOptions{Provider: CPU, IntraOpThreads: 1}, Warmup: []int{1, 10}, Interval: time.Hour},
		nil, testenv.DiscardLogger(), prometheus.NewRegistry())

	r.Scan()
	if _, err := r.Latest(); !errors.Is(err, ErrNoModel) {
		t.Fatalf("empty registry: Latest = %v, want ErrNoModel", err)
	}

	publish(t, root, "v1", modeltest.Logistic{W: []float32{1, 1}}, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC))
	r.Scan()
	v1, err := r.Latest()
	if err != nil || v1.Version != "v1" {
		t.Fatalf("Latest = %v, %v; want v1", v1, err)
	}

	// A corrupt version fails and v1 keeps serving.
	if err := modeltest.Publish(root, "ctr", "v3", []byte("not onnx"), modeltest.Logistic{W: []float32{1, 1}}.Metadata("ctr", "v3", time.Now(),
		[]map[string]any{{"name": "x", "source": "item.ctr"}, {"name": "y", "source": "user.ctr"}})); err != nil {
		t.Fatal(err)
	}
	r.Scan()
	if v, _ := r.Latest(); v.Version != "v1" {
		t.Errorf("after a corrupt v3, Latest = %s, want v1", v.Version)
	}
	states := map[string]State{}
	for _, in := range r.List() {
		states[in.Version] = in.State
		if in.Version == "v3" && in.Error == "" {
			t.Error("v3 failed without an error message")
		}
		if in.Version == "v1" && (in.Provider != CPU || len(in.WarmupBatchSizes) != 2) {
			t.Errorf("v1 info = %+v, want cpu and two warm-up sizes", in)
		}
	}
	if states["v1"] != Ready || states["v3"] != Failed {
		t.Errorf("states = %v, want v1 ready, v3 failed", states)
	}

	// A newer v2 takes over; v1, routed to by nothing, stays for the grace
	// period and is then unloaded.
	r.cfg.UnloadGrace = time.Hour
	publish(t, root, "v2", modeltest.Logistic{W: []float32{2, 2}}, time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC))
	r.Scan()
	if _, err := v1.Score([]float32{1, 1}, nil); err != nil {
		t.Errorf("v1 within its grace period: %v, want it still serving", err)
	}
	r.cfg.UnloadGrace = 0
	r.Scan()
	if v, _ := r.Latest(); v.Version != "v2" {
		t.Errorf("Latest = %s, want v2", v.Version)
	}
	if _, err := v1.Score([]float32{1, 1}, nil); !errors.Is(err, ErrUnloaded) {
		t.Errorf("v1.Score after unload = %v, want ErrUnloaded", err)
	}
	var nf *NotFoundError
	if _, err := r.Get("v9"); !errors.As(err, &nf) || len(nf.Ready) != 1 || nf.Ready[0] != "v2" {
		t.Errorf("Get(v9) = %v, want NotFoundError listing [v2]", err)
	}
}
