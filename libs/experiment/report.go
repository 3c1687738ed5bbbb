package experiment

import (
	"errors"
	"fmt"
	"strings"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/featurestore"
)

// DefaultControl is the arm compared against when a report names none.
const DefaultControl = "control"

// ErrNoEvents means the experiment has no events yet.
var ErrNoEvents = errors.New("no events recorded for this experiment yet")

// Report turns per-arm counts into a report: CTR with its 95% Wilson
// interval for every (arm, model version), and the lift and p-value of each
// against the control. The control is the arm named control (DefaultControl
// when empty, or else the first arm); when it ran several model versions,
// its version with the most impressions.
func Report(id, control string, arms []featurestore.ArmCounts) (*feedbackv1.GetExperimentReportResponse, error) {
	if len(arms) == 0 {
		return nil, ErrNoEvents
	}
	names := map[string]bool{}
	for _, a := range arms {
		names[a.Arm] = true
	}
	if control == "" {
		control = DefaultControl
		if !names[control] {
			control = arms[0].Arm
		}
	}
	if !names[control] {
		var known []string
		for _, a := range arms {
			known = append(known, a.Arm)
		}
		return nil, fmt.Errorf("control_arm %q: the experiment's arms are %s", control, strings.Join(known, ", "))
	}
	var base featurestore.ArmCounts
	for _, a := range arms {
		if a.Arm == control && a.Impressions >= base.Impressions {
			base = a
		}
	}
	baseCTR := ctr(base)
	resp := &feedbackv1.GetExperimentReportResponse{ExperimentId: id, ControlArm: control}
	for _, a := range arms {
		low, high := Wilson(a.Clicks, a.Impressions)
		r := &feedbackv1.ArmReport{
			Arm: a.Arm, ModelVersion: a.ModelVersion, Impressions: a.Impressions, Clicks: a.Clicks, UniqueUsers: a.UniqueUsers,
			Ctr: ctr(a), CtrLow: low, CtrHigh: high, PValue: 1,
		}
		if a != base {
			if baseCTR > 0 {
				r.Lift = r.Ctr/baseCTR - 1
			}
			r.PValue = TwoProportionP(a.Clicks, a.Impressions, base.Clicks, base.Impressions)
		}
		resp.Arms = append(resp.Arms, r)
	}
	return resp, nil
}

func ctr(a featurestore.ArmCounts) float64 {
	if a.Impressions == 0 {
		return 0
	}
	return float64(a.Clicks) / float64(a.Impressions)
}
