package simulator_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/testenv"
	"github.com/recsys/recsys/services/local"
	"github.com/recsys/recsys/services/simulator"
	"github.com/recsys/recsys/services/trainer"
)

// TestClosedLoop runs the whole platform in-process (embedded Redis and
// Kafka), starts it on a weak model, and runs the scenario: the model
// retrained on the platform's own logs must beat it in the 50/50
// experiment with p < 0.05.
func TestClosedLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole platform through two simulations and a training")
	}
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}
	dir := t.TempDir()
	models := filepath.Join(dir, "models")
	expFile := filepath.Join(dir, "experiments.json")
	if err := simulator.WriteExperiment(expFile, &experiment.Config{ID: "warmup", Salt: "w", Arms: []experiment.Arm{{Name: "control", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	// A weak first model: little data, one epoch.
	if _, err := trainer.Train(context.Background(), trainer.Config{ModelRoot: models, ModelName: "ctr", Version: "v1-initial", WorldSeed: 3,
		Users: 500, Items: 300, Interactions: 3000, Epochs: 1, Dim: 4}, io.Discard); err != nil {
		t.Fatal(err)
	}

	ports := testenv.FreePorts(t, 14)
	var cfg local.Config
	fs := flag.NewFlagSet("recsys", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	args := []string{"-redis=embedded", "-simulate=false", fmt.Sprintf("-kafka=embedded://127.0.0.1:%d", ports[12]),
		"-ranking.model-root=" + models, "-ranking.experiment-file=" + expFile, "-ranking.model-scan-interval=200ms", "-ranking.ready-interval=100ms"}
	addr := map[string]string{}
	for i, s := range []string{"userfeatures", "itemfeatures", "ranking", "feedback", "featurecompute", "web"} {
		addr[s] = fmt.Sprintf("127.0.0.1:%d", ports[2*i])
		args = append(args, "-"+s+".grpc-addr="+addr[s], fmt.Sprintf("-%s.http-addr=127.0.0.1:%d", s, ports[2*i+1]))
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- local.Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("platform: %v", err)
		}
	}()
	for _, a := range addr {
		testenv.WaitForPort(t, a, 30*time.Second)
	}

	sim := simulator.Config{Ranking: addr["ranking"], Feedback: addr["feedback"], UserFeatures: addr["userfeatures"], ItemFeatures: addr["itemfeatures"],
		WorldSeed: 3, Users: 500, Items: 300, Concurrency: 4, ListSize: 10}
	cl, closeAll, err := simulator.Dial(sim)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	// Wait for the first model to be warm.
	report, err := simulator.Scenario(ctx, cl, simulator.ScenarioConfig{Sim: sim, ModelRoot: models, ModelName: "ctr", ExperimentFile: expFile,
		Kafka: []string{fmt.Sprintf("127.0.0.1:%d", ports[12])}, Before: 1500, After: 3000}, os.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	var control, treatment float64
	var p float64
	for _, a := range report.GetArms() {
		switch {
		case a.GetArm() == "control" && a.GetModelVersion() == "v1-initial":
			control = a.GetCtr()
		case a.GetArm() == "treatment" && a.GetModelVersion() != "v1-initial":
			treatment, p = a.GetCtr(), a.GetPValue()
		}
		if a.GetArm() == "control" && a.GetModelVersion() != "v1-initial" {
			t.Errorf("the control arm was served by %s; it is pinned to v1-initial", a.GetModelVersion())
		}
	}
	if !(treatment > control && p < 0.05) {
		t.Errorf("retrained CTR %.4f vs initial %.4f with p %.3g: want higher with p < 0.05", treatment, control, p)
	}
}
