package experiment

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/featurestore"
)

// simulated is an experiment of two arms drawn from world, with its
// counts as the feature store reports them.
func simulated(seed uint64, control, treatment int, lift float64) (Input, [2]Moments) {
	w := world{rand.New(rand.NewPCG(seed, 1))}
	var m [2]Moments
	for range control {
		u := w.user(0)
		m[0].Add(u.y, u.x, u.c, u.m)
	}
	for range treatment {
		u := w.user(lift)
		m[1].Add(u.y, u.x, u.c, u.m)
	}
	in := Input{ID: "exp", Weights: map[string]float64{"control": 50, "treatment": 50}}
	for i, arm := range []string{"control", "treatment"} {
		// Two versions in the treatment arm: the report is per arm.
		imps, clicks := int64(m[i].Sum[impressions]), int64(m[i].Sum[clicks])
		if arm == "treatment" {
			in.Counts = append(in.Counts, featurestore.ArmCounts{Arm: arm, ModelVersion: "v2-old", Impressions: 10, Clicks: 1, UniqueUsers: 3})
			imps, clicks = imps-10, clicks-1
		}
		in.Counts = append(in.Counts, featurestore.ArmCounts{Arm: arm, ModelVersion: "v-" + arm, Impressions: imps, Clicks: clicks, UniqueUsers: m[i].Users})
		in.Arms = append(in.Arms, featurestore.ArmStats{Arm: arm, UserSums: featurestore.UserSums(m[i])})
	}
	return in, m
}

func TestReport(t *testing.T) {
	in, m := simulated(1, 2000, 2000, 0.15)
	r, err := Report(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.GetArms()) != 2 || r.GetControlArm() != "control" || r.GetArms()[0].GetArm() != "control" {
		t.Fatalf("Report = %v, want control then treatment", r)
	}
	c, tr := r.GetArms()[0], r.GetArms()[1]
	ce, _ := m[0].CTR()
	te, _ := m[1].CTR()
	lift := Lift(te, ce)
	low, high := lift.Interval()
	sp, slow, shigh := Sequential(lift, MixtureSD)
	for _, f := range []struct {
		name      string
		got, want float64
	}{
		{"control ctr", c.GetCtr(), m[0].Sum[clicks] / m[0].Sum[impressions]},
		{"control ctr_low", c.GetCtrLow(), ce.Value - z95*ce.SE()},
		{"control ctr_high", c.GetCtrHigh(), ce.Value + z95*ce.SE()},
		{"control p_value", c.GetPValue(), 1},
		{"control lift", c.GetLift(), 0},
		{"treatment lift", tr.GetLift(), lift.Value},
		{"treatment lift_low", tr.GetLiftLow(), low},
		{"treatment lift_high", tr.GetLiftHigh(), high},
		{"treatment p_value", tr.GetPValue(), lift.P()},
		{"treatment sequential_p_value", tr.GetSequentialPValue(), sp},
		{"treatment sequential_lift_low", tr.GetSequentialLiftLow(), slow},
		{"treatment sequential_lift_high", tr.GetSequentialLiftHigh(), shigh},
		{"treatment expected_user_share", tr.GetExpectedUserShare(), 0.5},
		{"treatment user_share", tr.GetUserShare(), 0.5},
	} {
		if !near(f.got, f.want, 1e-12) && math.Abs(f.got-f.want) > 1e-15 {
			t.Errorf("%s = %v, want %v", f.name, f.got, f.want)
		}
	}
	if tr.GetUniqueUsers() != 2000 || tr.GetImpressions() != int64(m[1].Sum[impressions]) || tr.GetModelVersion() != "v-treatment" || len(tr.GetVersions()) != 2 {
		t.Errorf("treatment = %v users, %v impressions, version %q, versions %v; want 2000, %v, v-treatment, two", tr.GetUniqueUsers(), tr.GetImpressions(),
			tr.GetModelVersion(), tr.GetVersions(), m[1].Sum[impressions])
	}
	if !(tr.GetPValue() < Alpha && tr.GetLiftLow() > 0) {
		t.Errorf("a 15%% lift over 4000 users: p %v, interval [%v, %v]; want it detected", tr.GetPValue(), tr.GetLiftLow(), tr.GetLiftHigh())
	}
	if !(tr.GetCupedVarianceReduction() > 0.05 && tr.GetCupedLiftHigh()-tr.GetCupedLiftLow() < tr.GetLiftHigh()-tr.GetLiftLow()) {
		t.Errorf("CUPED: reduction %v, interval [%v, %v] against [%v, %v]; want a narrower interval", tr.GetCupedVarianceReduction(),
			tr.GetCupedLiftLow(), tr.GetCupedLiftHigh(), tr.GetLiftLow(), tr.GetLiftHigh())
	}
	if c.GetCupedVarianceReduction() <= 0 {
		t.Errorf("control CUPED reduction %v, want positive", c.GetCupedVarianceReduction())
	}
	if !r.GetSrmChecked() || r.GetSrm() || r.GetSrmPValue() != 1 || r.GetAlpha() != Alpha || r.GetSequentialMixtureSd() != MixtureSD {
		t.Errorf("report = srm checked %v, srm %v (p %v), alpha %v, mixture %v; want checked, none (p 1), %v, %v", r.GetSrmChecked(), r.GetSrm(),
			r.GetSrmPValue(), r.GetAlpha(), r.GetSequentialMixtureSd(), Alpha, MixtureSD)
	}
	if len(r.GetWarnings()) != 1 || !strings.Contains(r.GetWarnings()[0], "serving flags") {
		t.Errorf("warnings = %q, want only that no impression carried serving flags", r.GetWarnings())
	}
}

func TestReportSRM(t *testing.T) {
	in, _ := simulated(2, 1100, 900, 0)
	r, err := Report(in)
	if err != nil {
		t.Fatal(err)
	}
	// χ² = 2·100²/1000 = 20 with one degree of freedom.
	if want := math.Erfc(math.Sqrt(10)); !r.GetSrm() || !near(r.GetSrmPValue(), want, 1e-9) || !strings.Contains(strings.Join(r.GetWarnings(), "\n"), "Do not trust") {
		t.Errorf("1100 vs 900 users at 50/50: srm %v, p %v (want %v), warnings %q; want a mismatch and a warning not to trust the report", r.GetSrm(), r.GetSrmPValue(), want, r.GetWarnings())
	}
	in.Weights = map[string]float64{"control": 55, "treatment": 45}
	if r, _ := Report(in); r.GetSrm() || r.GetSrmPValue() != 1 {
		t.Errorf("1100 vs 900 users at 55/45: srm %v, p %v; want none", r.GetSrm(), r.GetSrmPValue())
	}
	in.Weights = nil
	if r, _ := Report(in); r.GetSrmChecked() || !strings.Contains(strings.Join(r.GetWarnings(), "\n"), "-experiment-file") {
		t.Errorf("no weights: srm checked %v, warnings %q; want unchecked, and how to give the weights", r.GetSrmChecked(), r.GetWarnings())
	}
}

func TestReportGuardrails(t *testing.T) {
	in, _ := simulated(3, 500, 500, 0)
	flags := func(n int64, latency time.Duration, fd, mf int64) featurestore.ArmStats {
		return featurestore.ArmStats{Flagged: n, FeatureFallbacks: fd, ModelFallbacks: mf,
			Latency: map[int]int64{featurestore.LatencyBucket(latency): n - n/200, featurestore.LatencyBucket(4 * latency): n / 200}} // a tail of 0.5%
	}
	for _, tc := range []struct {
		name      string
		treatment featurestore.ArmStats
		want      []string
	}{
		{"same", flags(1000, 5*time.Millisecond, 10, 0), nil},
		{"slower", flags(1000, 8*time.Millisecond, 10, 0), []string{"p99 latency"}},
		{"feature fallbacks", flags(1000, 5*time.Millisecond, 40, 0), []string{"feature-fallback rate 4.0%"}},
		{"model fallbacks", flags(1000, 5*time.Millisecond, 10, 30), []string{"model-fallback rate 3.0%"}},
		{"too few to judge", flags(100, 50*time.Millisecond, 50, 50), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := flags(1000, 5*time.Millisecond, 10, 0)
			c.Arm, c.UserSums = "control", in.Arms[0].UserSums
			tr := tc.treatment
			tr.Arm, tr.UserSums = "treatment", in.Arms[1].UserSums
			in.Arms = []featurestore.ArmStats{c, tr}
			r, err := Report(in)
			if err != nil {
				t.Fatal(err)
			}
			g := r.GetArms()[1].GetGuardrails()
			if len(g.GetBreaches()) != len(tc.want) || r.GetGuardrailBreach() != (len(tc.want) > 0) {
				t.Fatalf("breaches = %q (flag %v), want %q", g.GetBreaches(), r.GetGuardrailBreach(), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(g.GetBreaches()[i], w) {
					t.Errorf("breach %q, want it to say %q", g.GetBreaches()[i], w)
				}
			}
			if cg := r.GetArms()[0].GetGuardrails(); cg.GetLatencyP99().AsDuration() != featurestore.LatencyBucketUpper(featurestore.LatencyBucket(5*time.Millisecond)) || cg.GetFeatureFallbackRate() != 0.01 {
				t.Errorf("control guardrails = %v, want p99 in 5 ms's bucket and a 1%% feature-fallback rate", cg)
			}
		})
	}
}

func TestReportErrors(t *testing.T) {
	in, _ := simulated(4, 50, 50, 0)
	in.Control = "nope"
	if _, err := Report(in); err == nil || !strings.Contains(err.Error(), "control, treatment") {
		t.Errorf("Report(control nope) = %v, want an error listing the arms", err)
	}
	if _, err := Report(Input{ID: "exp"}); !errors.Is(err, ErrNoEvents) {
		t.Errorf("Report(no arms) = %v, want ErrNoEvents", err)
	}
	// Counts without user sums (recorded before the store kept them): the
	// counts, and no inference.
	in.Control, in.Arms = "", nil
	r, err := Report(in)
	if err != nil {
		t.Fatal(err)
	}
	tr := r.GetArms()[1]
	if tr.GetPValue() != 1 || tr.GetSequentialPValue() != 1 || tr.GetCtrHigh() != 0 || tr.GetImpressions() == 0 || !strings.Contains(strings.Join(r.GetWarnings(), "\n"), "no per-user counts") {
		t.Errorf("without user sums: %v, warnings %q; want counts, no test, and a warning", tr, r.GetWarnings())
	}
	// Few users: a warning that the approximation is rough.
	in, _ = simulated(5, 50, 50, 0)
	if r, _ := Report(in); !strings.Contains(strings.Join(r.GetWarnings(), "\n"), "rough") {
		t.Errorf("50 users per arm: warnings %q, want one that the intervals are rough", r.GetWarnings())
	}
}

// The report's own type is the one the service returns.
var _ *feedbackv1.GetExperimentReportResponse
