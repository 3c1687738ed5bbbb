package simulator

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc/metadata"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	rankingv1 "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/services/trainer"
)

// ScenarioConfig is the closed loop (docs/architecture.md, "The loop"), end to end.
type ScenarioConfig struct {
	Sim            Config
	ModelRoot      string   // the ranking service's -model-root
	ModelName      string   // its -model-name
	ExperimentFile string   // its -experiment-file (rewritten here)
	Kafka          []string // where the trainer reads the logs
	Before, After  int      // sessions before retraining, and in the A/B experiment
	AA             int      // sessions in the A/A experiment (0: as many as After)
	Epochs, Dim    int      // training of both arms (0: 5 epochs, 16 dimensions)
}

// ScenarioResult is what the scenario's two experiments reported.
type ScenarioResult struct {
	// AA ran the control model in both arms: any difference it finds is
	// chance (or a broken pipeline).
	AA *feedbackv1.GetExperimentReportResponse
	// AB ran control against treatment: the same ranker, trained on the
	// platform's log, with and without the retrieval stage (Scenario).
	AB *feedbackv1.GetExperimentReportResponse
	// Control and Treatment are the two versions.
	Control, Treatment string
}

// WriteExperiment writes an experiment file atomically.
func WriteExperiment(path string, c *experiment.Config) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Scenario seeds the world, simulates traffic on the serving model, and
// retrains from the platform's own logs (trainer -from-log: a retrieval
// index from the clicks, a ranker from the feature rows serving logged,
// joined with the clicks). Two versions come out of that one training,
// differing only in what the platform claims matters: the treatment is
// the whole pipeline; the control is the same ranker without its
// retrieval index, so its candidates are the trending lists. It then runs
// an A/A experiment (the control in both arms, 50/50) and the A/B
// experiment (control against treatment, 50/50), and returns both
// reports, analysed at the user level.
func Scenario(ctx context.Context, cl Clients, c ScenarioConfig, out io.Writer) (*ScenarioResult, error) {
	w := trainer.NewWorld(c.Sim.WorldSeed, c.Sim.Users, c.Sim.Items)
	fmt.Fprintln(out, "== seeding the world")
	if err := SeedWorld(ctx, cl, w); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "== simulating %d sessions on the serving model\n", c.Before)
	sim := c.Sim
	sim.Sessions = c.Before
	rep, err := Simulate(ctx, cl, w, sim, 1, out)
	if err != nil {
		return nil, err
	}
	rep.Print(out)
	served := false
	for _, a := range rep.Arms {
		served = served || a.ModelVersion != ""
	}
	if !served {
		return nil, fmt.Errorf("no session was ranked by a model (%d sessions, %d failed)", rep.Sessions, rep.Failed)
	}

	time.Sleep(2 * time.Second) // let the served-ranking log flush
	stamp := time.Now().UTC().Format("20060102-150405")
	res := &ScenarioResult{Control: "v" + stamp + "-trending", Treatment: "v" + stamp + "-retrieval"}
	epochs, dim := c.Epochs, c.Dim
	if epochs == 0 {
		epochs = 5
	}
	if dim == 0 {
		dim = 16
	}
	fmt.Fprintf(out, "== training %s on the log: retrieval index from the clicks, ranker on the logged feature rows\n", res.Treatment)
	trained, err := trainer.Train(ctx, trainer.Config{ModelRoot: c.ModelRoot, ModelName: c.ModelName, Version: res.Treatment, FromLog: true,
		Kafka: eventstream.Config{Brokers: c.Kafka}, Epochs: epochs, Dim: dim, WorldSeed: c.Sim.WorldSeed, MaxSamples: 2_000_000}, out)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "== publishing %s: the same ranker without the retrieval index (trending candidates)\n", res.Control)
	meta := trainer.RankerMetadata(c.ModelName, res.Control)
	meta.CreatedAt = time.Now().UTC()
	if err := trainer.Publish(c.ModelRoot, meta, trained.Pipeline.Model, nil); err != nil {
		return nil, err
	}

	aa := &experiment.Config{ID: "aa-" + stamp, Salt: "aa-" + stamp, Arms: []experiment.Arm{
		{Name: "control", ModelVersion: res.Control, Weight: 50}, {Name: "treatment", ModelVersion: res.Control, Weight: 50}}}
	sessions := c.AA
	if sessions == 0 {
		sessions = c.After
	}
	if res.AA, err = runExperiment(ctx, cl, w, c, aa, sessions, 2, out); err != nil {
		return nil, err
	}
	ab := &experiment.Config{ID: "ab-" + stamp, Salt: "ab-" + stamp, Arms: []experiment.Arm{
		{Name: "control", ModelVersion: res.Control, Weight: 50}, {Name: "treatment", ModelVersion: res.Treatment, Weight: 50}}}
	if res.AB, err = runExperiment(ctx, cl, w, c, ab, c.After, 3, out); err != nil {
		return nil, err
	}
	return res, nil
}

// runExperiment starts experiment exp (rewriting the experiment file),
// waits until the ranking service serves each arm's version, simulates
// sessions, waits until the stream processor has counted them, and
// returns the report.
func runExperiment(ctx context.Context, cl Clients, w *trainer.World, c ScenarioConfig, exp *experiment.Config, sessions int, seed uint64, out io.Writer) (*feedbackv1.GetExperimentReportResponse, error) {
	if err := WriteExperiment(c.ExperimentFile, exp); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "== experiment %s: %s %s vs %s %s; waiting for the ranking service\n", exp.ID,
		exp.Arms[0].Name, exp.Arms[0].ModelVersion, exp.Arms[1].Name, exp.Arms[1].ModelVersion)
	for _, arm := range exp.Arms {
		hdr := metadata.AppendToOutgoingContext(ctx, "x-recsys-arm", arm.Name)
		for end := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
			r, err := cl.Ranking.Recommend(hdr, &rankingv1.RecommendRequest{UserId: w.Users[0].ID})
			if err == nil && r.GetModelVersion() == arm.ModelVersion && r.GetExperimentId() == exp.ID {
				break
			}
			if time.Now().After(end) {
				return nil, fmt.Errorf("the ranking service did not serve %s in arm %s of experiment %s within 2 minutes (last: %v, %v)", arm.ModelVersion, arm.Name, exp.ID, r, err)
			}
		}
	}
	fmt.Fprintf(out, "== simulating %d sessions in experiment %s\n", sessions, exp.ID)
	sim := c.Sim
	sim.Sessions = sessions
	rep, err := Simulate(ctx, cl, w, sim, seed, out)
	if err != nil {
		return nil, err
	}
	rep.Print(out)
	sent := int64(0)
	for _, a := range rep.Arms {
		sent += int64(a.Impressions)
	}
	weights := map[string]float64{}
	for _, a := range exp.Arms {
		weights[a.Name] = a.Weight
	}
	// The stream processor counts asynchronously, and on a busy machine
	// well behind the simulation: wait until it has every impression the
	// simulation sent, for as long as it makes progress.
	var report *feedbackv1.GetExperimentReportResponse
	last := int64(-1)
	for stall := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		report, err = cl.Feedback.GetExperimentReport(ctx, &feedbackv1.GetExperimentReportRequest{ExperimentId: exp.ID, ArmWeights: weights})
		counted := int64(0)
		for _, a := range report.GetArms() {
			counted += a.GetImpressions()
		}
		if err == nil && counted >= sent {
			break
		}
		if counted > last {
			last, stall = counted, time.Now().Add(30*time.Second)
		}
		if time.Now().After(stall) || ctx.Err() != nil {
			return nil, fmt.Errorf("experiment %s: %d of %d impressions counted, none more for 30 seconds (%v)", exp.ID, counted, sent, err)
		}
	}
	PrintReport(out, report)
	return report, nil
}

// PrintReport writes an experiment report as a table: per arm, users and
// CTR with its interval; against the control, the lift with its
// fixed-horizon interval and p-value, the always-valid p-value, and the
// CUPED lift with the variance it removed; then the split check and every
// warning.
func PrintReport(out io.Writer, r *feedbackv1.GetExperimentReportResponse) {
	fmt.Fprintf(out, "experiment %s (control: %s; user-level analysis)\n", r.GetExperimentId(), r.GetControlArm())
	fmt.Fprintf(out, "  %-10s %-28s %6s %11s %7s %7s %17s %8s %17s %9s %9s %8s %8s\n", "arm", "model version", "users", "impressions", "clicks", "CTR", "95% interval",
		"lift", "95% interval", "p (fixed)", "p (seq.)", "CUPED", "var. cut")
	for _, a := range r.GetArms() {
		fmt.Fprintf(out, "  %-10s %-28s %6d %11d %7d %7.4f [%7.4f, %7.4f]", a.GetArm(), a.GetModelVersion(), a.GetUniqueUsers(), a.GetImpressions(), a.GetClicks(),
			a.GetCtr(), a.GetCtrLow(), a.GetCtrHigh())
		if a.GetArm() != r.GetControlArm() {
			fmt.Fprintf(out, " %+7.1f%% [%+6.1f%%, %+6.1f%%] %9.2g %9.2g %+7.1f%% %7.0f%%", 100*a.GetLift(), 100*a.GetLiftLow(), 100*a.GetLiftHigh(),
				a.GetPValue(), a.GetSequentialPValue(), 100*a.GetCupedLift(), 100*a.GetCupedVarianceReduction())
		}
		fmt.Fprintln(out)
	}
	if r.GetSrmChecked() {
		fmt.Fprintf(out, "  sample-ratio check: p = %.3g (mismatch: %v)\n", r.GetSrmPValue(), r.GetSrm())
	}
	for _, w := range r.GetWarnings() {
		fmt.Fprintf(out, "  ! %s\n", w)
	}
}
