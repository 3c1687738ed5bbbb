package experiment

import (
	"fmt"
	"slices"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/featurestore"
)

// Guardrail thresholds: an arm breaches one when, against the control
// arm, and with at least MinGuardrailImpressions flagged impressions in
// both:
const (
	MinGuardrailImpressions = 200
	// its p99 server latency is more than 20% and more than a millisecond
	// above the control's (the histogram resolves 9%);
	LatencyRatio  = 1.2
	LatencyMargin = time.Millisecond
	// or its feature- or model-fallback rate is more than a percentage
	// point above the control's.
	FallbackMargin = 0.01
)

// These are operational thresholds, not significance tests: every
// impression of one ranking carries the same flags and latency, so an
// impression-level test would overstate its confidence the way the old
// CTR test did; the thresholds are wide enough for the noise of a few
// hundred rankings.

// Quantile is the q-quantile of a latency histogram (bucket → count):
// the upper bound of the bucket that holds it; 0 for an empty histogram.
func Quantile(hist map[int]int64, q float64) time.Duration {
	total := int64(0)
	buckets := make([]int, 0, len(hist))
	for b, n := range hist {
		total += n
		buckets = append(buckets, b)
	}
	if total == 0 {
		return 0
	}
	slices.Sort(buckets)
	need := q * float64(total)
	acc := int64(0)
	for _, b := range buckets {
		acc += hist[b]
		if float64(acc) >= need {
			return featurestore.LatencyBucketUpper(b)
		}
	}
	return featurestore.LatencyBucketUpper(buckets[len(buckets)-1])
}

// guardrails summarises an arm's serving flags.
func guardrails(a featurestore.ArmStats) *feedbackv1.Guardrails {
	g := &feedbackv1.Guardrails{Impressions: a.Flagged}
	if a.Flagged > 0 {
		g.LatencyP99 = durationpb.New(Quantile(a.Latency, 0.99))
		g.FeatureFallbackRate = float64(a.FeatureFallbacks) / float64(a.Flagged)
		g.ModelFallbackRate = float64(a.ModelFallbacks) / float64(a.Flagged)
	}
	return g
}

// breaches lists the guardrails arm breached against control, in words.
func breaches(arm, control *feedbackv1.Guardrails) []string {
	if arm.GetImpressions() < MinGuardrailImpressions || control.GetImpressions() < MinGuardrailImpressions {
		return nil
	}
	var out []string
	p, pc := arm.GetLatencyP99().AsDuration(), control.GetLatencyP99().AsDuration()
	if float64(p) > LatencyRatio*float64(pc) && p-pc > LatencyMargin {
		out = append(out, fmt.Sprintf("p99 latency %v against the control's %v (more than %.0f%% slower)", p.Round(10*time.Microsecond), pc.Round(10*time.Microsecond), 100*(LatencyRatio-1)))
	}
	for _, r := range []struct {
		what      string
		got, base float64
	}{
		{"feature-fallback", arm.GetFeatureFallbackRate(), control.GetFeatureFallbackRate()},
		{"model-fallback", arm.GetModelFallbackRate(), control.GetModelFallbackRate()},
	} {
		if r.got > r.base+FallbackMargin {
			out = append(out, fmt.Sprintf("%s rate %.1f%% against the control's %.1f%%", r.what, 100*r.got, 100*r.base))
		}
	}
	return out
}
