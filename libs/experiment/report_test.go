package experiment

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/recsys/recsys/libs/featurestore"
)

func TestReport(t *testing.T) {
	arms := []featurestore.ArmCounts{
		{Arm: "control", ModelVersion: "v1", Impressions: 100, Clicks: 40},
		{Arm: "treatment", ModelVersion: "v2", Impressions: 100, Clicks: 60},
	}
	r, err := Report("exp", "", arms)
	if err != nil {
		t.Fatal(err)
	}
	if r.GetControlArm() != "control" || len(r.GetArms()) != 2 {
		t.Fatalf("Report = %v", r)
	}
	tr := r.GetArms()[1]
	if math.Abs(tr.GetLift()-0.5) > 1e-12 || math.Abs(tr.GetPValue()-0.004677735) > 1e-6 || tr.GetCtr() != 0.6 {
		t.Errorf("treatment = %v, want lift 0.5, p 0.0047, ctr 0.6", tr)
	}
	if c := r.GetArms()[0]; c.GetPValue() != 1 || c.GetLift() != 0 || c.GetCtrLow() >= 0.4 || c.GetCtrHigh() <= 0.4 {
		t.Errorf("control = %v, want p 1, lift 0, interval around 0.4", c)
	}
	if _, err := Report("exp", "nope", arms); err == nil || !strings.Contains(err.Error(), "control, treatment") {
		t.Errorf("Report(control nope) = %v, want an error listing the arms", err)
	}
	if _, err := Report("exp", "", nil); !errors.Is(err, ErrNoEvents) {
		t.Errorf("Report(no arms) = %v, want ErrNoEvents", err)
	}
}
