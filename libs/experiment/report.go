package experiment

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/featurestore"
)

// DefaultControl is the arm compared against when a report names none.
const DefaultControl = "control"

// SRMThreshold is the p-value of the sample-ratio check below which a
// report flags a mismatch. It is strict because the check runs on every
// reading of every experiment: a false alarm should be rare, and a real
// mismatch (a broken assignment or a lossy log) usually gives a p-value
// far smaller.
const SRMThreshold = 0.001

// MinUsers is the number of users per arm below which a report warns
// that its normal approximations are rough.
const MinUsers = 100

// ErrNoEvents means the experiment has no events yet.
var ErrNoEvents = errors.New("no events recorded for this experiment yet")

// Input is what a report is computed from.
type Input struct {
	ID string
	// Control is the arm to compare against: empty means DefaultControl
	// when there is one, else the first arm by name.
	Control string
	// Weights are the configured traffic weights by arm, for the
	// sample-ratio check; nil when unknown.
	Weights map[string]float64
	// Counts are the experiment's impressions and clicks by arm and model
	// version, Arms its arms' user-level sums and guardrail counts
	// (featurestore.Store.ExperimentStats).
	Counts []featurestore.ArmCounts
	Arms   []featurestore.ArmStats
}

// Report analyses an experiment at the level of its users (package doc):
// per arm, CTR with its 95% interval; for every arm but the control, the
// lift over the control with a fixed-horizon interval and p-value, an
// always-valid p-value and confidence sequence (Sequential), and the same
// lift adjusted by CUPED with the variance it removed; guardrails against
// the control; and a sample-ratio check of the users per arm against the
// configured weights. The arms are the control first, then the others by
// name.
func Report(in Input) (*feedbackv1.GetExperimentReportResponse, error) {
	byArm := map[string]*feedbackv1.ArmReport{}
	for _, c := range in.Counts {
		r := byArm[c.Arm]
		if r == nil {
			r = &feedbackv1.ArmReport{Arm: c.Arm}
			byArm[c.Arm] = r
		}
		r.Impressions += c.Impressions
		r.Clicks += c.Clicks
		r.UniqueUsers = max(r.UniqueUsers, c.UniqueUsers) // the HyperLogLog's, until the user sums say
		if len(r.Versions) == 0 || c.Impressions > r.Versions[0].GetImpressions() {
			r.ModelVersion = c.ModelVersion // the version that served most
		}
		r.Versions = append(r.Versions, &feedbackv1.VersionCounts{ModelVersion: c.ModelVersion, Impressions: c.Impressions, Clicks: c.Clicks})
		slices.SortStableFunc(r.Versions, func(a, b *feedbackv1.VersionCounts) int { return cmp.Compare(b.GetImpressions(), a.GetImpressions()) })
	}
	if len(byArm) == 0 {
		return nil, ErrNoEvents
	}
	stats := map[string]featurestore.ArmStats{}
	for _, a := range in.Arms {
		stats[a.Arm] = a
	}
	names := slices.Sorted(maps.Keys(byArm))
	control := in.Control
	if control == "" {
		control = DefaultControl
		if byArm[control] == nil {
			control = names[0]
		}
	}
	if byArm[control] == nil {
		return nil, fmt.Errorf("control_arm %q: the experiment's arms are %s", control, strings.Join(names, ", "))
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == control })
	names = append([]string{control}, names...)

	resp := &feedbackv1.GetExperimentReportResponse{ExperimentId: in.ID, ControlArm: control, Alpha: Alpha, SequentialMixtureSd: MixtureSD}
	warn := func(format string, args ...any) { resp.Warnings = append(resp.Warnings, fmt.Sprintf(format, args...)) }

	// Per arm: its users and CTR.
	moments := map[string]Moments{}
	ctrs := map[string]Estimate{}
	users := map[string]int64{}
	totalUsers := int64(0)
	for _, name := range names {
		r, st := byArm[name], stats[name]
		m := Moments(st.UserSums)
		moments[name] = m
		if m.Users > 0 {
			r.UniqueUsers = m.Users
		}
		users[name] = r.GetUniqueUsers()
		totalUsers += r.GetUniqueUsers()
		r.PValue, r.SequentialPValue, r.CupedPValue = 1, 1, 1
		if r.Impressions > 0 {
			r.Ctr = float64(r.Clicks) / float64(r.Impressions)
		}
		r.Guardrails = guardrails(st)
		switch e, ok := m.CTR(); {
		case ok:
			ctrs[name] = e
			r.Ctr = e.Value
			r.CtrLow, r.CtrHigh = e.Interval()
			r.CtrLow = max(r.CtrLow, 0)
			if m.Users < MinUsers {
				warn("Arm %s has %d users: the normal approximations behind its intervals and p-values need more (at least %d per arm); read them as rough.", name, m.Users, MinUsers)
			}
		case m.Users == 0 && r.Impressions > 0:
			warn("Arm %s has impressions but no per-user counts (recorded before user-level counting): it has no interval and no test.", name)
		default:
			warn("Arm %s has %d user(s): too few for an interval or a test.", name, m.Users)
		}
	}
	for _, name := range names {
		if totalUsers > 0 {
			byArm[name].UserShare = float64(users[name]) / float64(totalUsers)
		}
	}

	// Against the control.
	base, baseOK := ctrs[control]
	for _, name := range names {
		r := byArm[name]
		if name == control {
			if est, ok := CUPED(moments[name]); ok && base.Var > 0 {
				r.CupedVarianceReduction = 1 - est[0].Var/base.Var
			}
			continue
		}
		if b := breaches(r.GetGuardrails(), byArm[control].GetGuardrails()); len(b) > 0 {
			r.Guardrails.Breaches = b
			resp.GuardrailBreach = true
			warn("Arm %s breached guardrails: %s.", name, strings.Join(b, "; "))
		}
		t, ok := ctrs[name]
		if !ok || !baseOK || base.Value == 0 {
			continue
		}
		lift := Lift(t, base)
		r.Lift, r.PValue = lift.Value, lift.P()
		r.LiftLow, r.LiftHigh = lift.Interval()
		r.SequentialPValue, r.SequentialLiftLow, r.SequentialLiftHigh = Sequential(lift, MixtureSD)
		r.CupedLift, r.CupedLiftLow, r.CupedLiftHigh, r.CupedPValue = r.Lift, r.LiftLow, r.LiftHigh, r.PValue
		if est, ok := CUPED(moments[control], moments[name]); ok {
			cl := Lift(est[1], est[0])
			if cl.Var > 0 && lift.Var > 0 {
				r.CupedLift, r.CupedPValue = cl.Value, cl.P()
				r.CupedLiftLow, r.CupedLiftHigh = cl.Interval()
				r.CupedVarianceReduction = 1 - cl.Var/lift.Var
			}
		}
	}

	// The split.
	flagged := int64(0)
	for _, name := range names {
		flagged += byArm[name].GetGuardrails().GetImpressions()
	}
	if flagged == 0 {
		warn("No impression carried serving flags (Event.server_latency): guardrails were not evaluated.")
	}
	wsum := 0.0
	for _, w := range in.Weights {
		wsum += max(w, 0)
	}
	switch {
	case wsum <= 0:
		warn("The configured weights are unknown, so the sample-ratio check was skipped: pass arm_weights, or run the feedback service with the experiment file (-experiment-file).")
	case totalUsers > 0:
		resp.SrmChecked = true
		for _, name := range names {
			if w, ok := in.Weights[name]; ok {
				byArm[name].ExpectedUserShare = max(w, 0) / wsum
			} else if users[name] > 0 {
				warn("Arm %s has %d users but no configured weight: users reach an arm the experiment does not have.", name, users[name])
			}
		}
		resp.SrmPValue = SRM(users, in.Weights)
		if resp.SrmPValue < SRMThreshold {
			resp.Srm = true
			var got, want []string
			for _, name := range slices.Sorted(maps.Keys(in.Weights)) {
				got = append(got, fmt.Sprintf("%s %d", name, users[name]))
				want = append(want, fmt.Sprintf("%s %.1f%%", name, 100*in.Weights[name]/wsum))
			}
			warn("Sample-ratio mismatch (p = %.2g): users per arm (%s) do not match the configured split (%s). Do not trust any result of this report: something (assignment, logging, filtering) treats the arms differently; find it first.",
				resp.SrmPValue, strings.Join(got, ", "), strings.Join(want, ", "))
		}
	}
	for _, name := range names {
		resp.Arms = append(resp.Arms, byArm[name])
	}
	return resp, nil
}
