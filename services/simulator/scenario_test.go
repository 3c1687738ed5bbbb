package simulator_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/testenv"
	"github.com/recsys/recsys/services/local"
	"github.com/recsys/recsys/services/simulator"
	"github.com/recsys/recsys/services/trainer"
)

// TestClosedLoop runs the whole platform in-process (embedded Redis and
// Kafka) and the scenario: traffic on a first model, then a retraining on
// that log, served with its retrieval index (treatment) and without it,
// from trending candidates (control), in an A/A and an A/B experiment,
// both analysed at the user level. The A/A must find no difference and no
// sample-ratio mismatch; the A/B must find the pipeline better by the
// always-valid test.
func TestClosedLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole platform through two simulations and a training")
	}
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}
	const users = 1000
	dir := t.TempDir()
	models := filepath.Join(dir, "models")
	expFile := filepath.Join(dir, "experiments.json")
	if err := simulator.WriteExperiment(expFile, &experiment.Config{ID: "warmup", Salt: "w", Arms: []experiment.Arm{{Name: "control", Weight: 1}}}); err != nil {
		t.Fatal(err)
	}
	// The first model only produces the log both arms learn from.
	if _, err := trainer.Train(context.Background(), trainer.Config{ModelRoot: models, ModelName: "ctr", Version: "v1-initial", WorldSeed: 3,
		Users: users, Items: 300, Interactions: 5000, Epochs: 3, Dim: 8}, io.Discard); err != nil {
		t.Fatal(err)
	}

	ports := testenv.FreePorts(t, 14)
	var cfg local.Config
	fs := flag.NewFlagSet("recsys", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	args := []string{"-redis=embedded", "-simulate=false", fmt.Sprintf("-kafka=embedded://127.0.0.1:%d", ports[12]),
		"-ranking.model-root=" + models, "-ranking.experiment-file=" + expFile, "-feedback.experiment-file=" + expFile, "-ranking.model-scan-interval=200ms", "-ranking.ready-interval=100ms"}
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
	go func() { done <- local.Run(ctx, cfg, testenv.DiscardLogger()) }()
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
		WorldSeed: 3, Users: users, Items: 300, Concurrency: 4, ListSize: 10}
	cl, closeAll, err := simulator.Dial(sim)
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll()
	res, err := simulator.Scenario(ctx, cl, simulator.ScenarioConfig{Sim: sim, ModelRoot: models, ModelName: "ctr", ExperimentFile: expFile,
		Kafka: []string{fmt.Sprintf("127.0.0.1:%d", ports[12])}, Before: 2000, AA: 2000, After: 5000}, os.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	check := func(r *feedbackv1.GetExperimentReportResponse, control, treatment string) *feedbackv1.ArmReport {
		t.Helper()
		if !r.GetSrmChecked() || r.GetSrm() || len(r.GetArms()) != 2 {
			t.Fatalf("experiment %s: %d arms, sample-ratio check %v with p %v: want two arms split as configured", r.GetExperimentId(), len(r.GetArms()), r.GetSrmChecked(), r.GetSrmPValue())
		}
		for i, want := range []string{control, treatment} {
			if a := r.GetArms()[i]; a.GetModelVersion() != want || len(a.GetVersions()) != 1 || a.GetUniqueUsers() < 100 {
				t.Errorf("experiment %s arm %s: served by %v with %d users; want only %s and at least 100 users", r.GetExperimentId(), a.GetArm(), a.GetVersions(), a.GetUniqueUsers(), want)
			}
		}
		return r.GetArms()[1]
	}
	// A/A: the same model in both arms. Read by the always-valid test, so
	// a chance difference fails this at most 5% of the time (far less when
	// read once).
	if a := check(res.AA, res.Control, res.Control); a.GetSequentialPValue() <= experiment.Alpha {
		t.Errorf("A/A: lift %.3f [%.3f, %.3f], always-valid p %.3g: want no significant difference", a.GetLift(), a.GetSequentialLiftLow(), a.GetSequentialLiftHigh(), a.GetSequentialPValue())
	}
	// A/B: retrieval from what users did beats trending candidates for
	// the same ranker, and the CUPED-adjusted lift agrees. The report is
	// read once, at the end, so the fixed-horizon p-value is the valid
	// one here (the always-valid one is for reading it as it goes).
	a := check(res.AB, res.Control, res.Treatment)
	t.Logf("A/B: the pipeline against the same ranker on trending candidates: lift %+.1f%% [%+.1f%%, %+.1f%%], p %.2g; always valid [%+.1f%%, %+.1f%%], p %.2g; CUPED %+.1f%% (variance %.0f%% lower)",
		100*a.GetLift(), 100*a.GetLiftLow(), 100*a.GetLiftHigh(), a.GetPValue(), 100*a.GetSequentialLiftLow(), 100*a.GetSequentialLiftHigh(), a.GetSequentialPValue(),
		100*a.GetCupedLift(), 100*a.GetCupedVarianceReduction())
	if a.GetPValue() > experiment.Alpha || a.GetLift() <= 0 || a.GetCupedLift() <= 0 {
		t.Errorf("A/B: lift %.3f (CUPED %.3f), p %.3g: want the pipeline significantly better, also with CUPED", a.GetLift(), a.GetCupedLift(), a.GetPValue())
	}
}
