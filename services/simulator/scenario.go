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
	"github.com/recsys/recsys/libs/experiment"
	"github.com/recsys/recsys/services/trainer"
)

// ScenarioConfig is the closed loop of DESIGN.md §1, end to end.
type ScenarioConfig struct {
	Sim            Config
	ModelRoot      string   // the ranking service's -model-root
	ModelName      string   // its -model-name
	ExperimentFile string   // its -experiment-file (rewritten here)
	Kafka          []string // where the trainer reads the logs
	Before, After  int      // sessions before and after retraining
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

// Scenario seeds the world, simulates traffic on the serving model, trains
// a new version from the logged data (the served feature rows joined with
// the clicks), publishes it as the treatment arm of a 50/50 experiment
// against the serving version, simulates again and returns the
// experiment's report.
func Scenario(ctx context.Context, cl Clients, c ScenarioConfig, out io.Writer) (*feedbackv1.GetExperimentReportResponse, error) {
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
	control, most := "", 0
	for _, a := range rep.Arms {
		if a.Impressions > most && a.ModelVersion != "" {
			control, most = a.ModelVersion, a.Impressions
		}
	}
	if control == "" {
		return nil, fmt.Errorf("no session was ranked by a model (%d sessions, %d failed)", rep.Sessions, rep.Failed)
	}

	fmt.Fprintln(out, "== training on the logged data")
	time.Sleep(2 * time.Second) // let the served-ranking log flush
	treatment := "v" + time.Now().UTC().Format("20060102-150405") + "-retrained"
	// The experiment goes first: it pins the serving version, so the
	// registry keeps it loaded when the new, newer version appears.
	exp := &experiment.Config{ID: "retrain-" + treatment, Salt: treatment, Arms: []experiment.Arm{
		{Name: "control", ModelVersion: control, Weight: 50}, {Name: "treatment", ModelVersion: treatment, Weight: 50}}}
	if err := WriteExperiment(c.ExperimentFile, exp); err != nil {
		return nil, err
	}
	if _, err := trainer.Train(ctx, trainer.Config{ModelRoot: c.ModelRoot, ModelName: c.ModelName, Version: treatment, FromLog: true,
		Kafka: c.Kafka, Epochs: 5, Dim: 8, MaxSamples: 2_000_000}, out); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "== experiment %s: control %s vs treatment %s; waiting for the ranking service\n", exp.ID, control, treatment)
	hdr := metadata.AppendToOutgoingContext(ctx, "x-recsys-arm", "treatment")
	for end := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		r, err := cl.Ranking.Recommend(hdr, &rankingv1.RecommendRequest{UserId: w.Users[0].ID})
		if err == nil && r.GetModelVersion() == treatment && r.GetExperimentId() == exp.ID {
			break
		}
		if time.Now().After(end) {
			return nil, fmt.Errorf("the ranking service did not serve %s in experiment %s within 2 minutes (last: %v, %v)", treatment, exp.ID, r, err)
		}
	}
	fmt.Fprintf(out, "== simulating %d sessions in the experiment\n", c.After)
	sim.Sessions = c.After
	rep, err = Simulate(ctx, cl, w, sim, 2, out)
	if err != nil {
		return nil, err
	}
	rep.Print(out)
	time.Sleep(time.Second) // let the stream processor count the last events
	report, err := cl.Feedback.GetExperimentReport(ctx, &feedbackv1.GetExperimentReportRequest{ExperimentId: exp.ID})
	if err != nil {
		return nil, err
	}
	PrintReport(out, report)
	return report, nil
}

// PrintReport writes an experiment report as a table.
func PrintReport(out io.Writer, r *feedbackv1.GetExperimentReportResponse) {
	fmt.Fprintf(out, "experiment %s (control: %s)\n", r.GetExperimentId(), r.GetControlArm())
	fmt.Fprintf(out, "  %-10s %-28s %11s %7s %7s %17s %8s %9s\n", "arm", "model version", "impressions", "clicks", "CTR", "95% interval", "lift", "p-value")
	for _, a := range r.GetArms() {
		fmt.Fprintf(out, "  %-10s %-28s %11d %7d %7.4f [%7.4f, %7.4f] %+7.1f%% %9.2g\n", a.GetArm(), a.GetModelVersion(), a.GetImpressions(), a.GetClicks(),
			a.GetCtr(), a.GetCtrLow(), a.GetCtrHigh(), 100*a.GetLift(), a.GetPValue())
	}
}
