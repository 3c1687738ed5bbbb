package featurestore

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestExperimentUserSums applies a random experiment in several batches
// (twice: the second time all duplicates) and checks the arms' user-level
// sums against ones computed here from the raw events, user by user.
func TestExperimentUserSums(t *testing.T) {
	forBackends(t, append(backends, perPart), t0, func(t *testing.T, s *Store, _ redis.UniversalClient) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(1, 2))
		week := 7 * 24 * time.Hour
		type tally struct{ y, x, c, m float64 }
		want := map[string]map[string]*tally{} // arm → user → tally
		// Before the experiment, some users have history: 3 hours before
		// their first exposure.
		var before []Event
		history := map[string][2]int{}
		for u := range 12 {
			user := fmt.Sprintf("u%d", u)
			if u%3 == 0 {
				continue // no history: covariate 0
			}
			imps, clicks := 1+rng.IntN(20), 0
			for i := range imps {
				before = append(before, Event{ID: fmt.Sprintf("pre-%s-%d", user, i), Kind: Impression, UserID: user, ItemID: "i", Time: t0.Add(-3 * time.Hour)})
				if rng.Float64() < 0.3 {
					clicks++
					before = append(before, Event{ID: fmt.Sprintf("pre-%s-%d-c", user, i), Kind: Click, UserID: user, ItemID: "i", Time: t0.Add(-3 * time.Hour)})
				}
			}
			history[user] = [2]int{clicks, imps}
		}
		if _, err := s.ApplyEvents(ctx, before); err != nil {
			t.Fatal(err)
		}
		var exp []Event
		var flagged, fd, mf int64
		latency := map[int]int64{}
		for n := range 400 {
			user := fmt.Sprintf("u%d", rng.IntN(12))
			arm, version := "control", "v1"
			if user[len(user)-1]%2 == 1 {
				arm, version = "treatment", "v2"
			}
			if want[arm] == nil {
				want[arm] = map[string]*tally{}
			}
			e := Event{ID: fmt.Sprintf("e%d", n), Kind: Impression, UserID: user, ItemID: "i", Time: t0.Add(time.Duration(n) * time.Second),
				ExperimentID: "x1", Arm: arm, ModelVersion: version}
			tl := want[arm][user]
			if tl == nil { // the history decayed to the first exposure
				h, decay := history[user], math.Exp2(-float64(e.Time.Sub(t0.Add(-3*time.Hour)))/float64(week))
				tl = &tally{c: float64(h[0]) * decay, m: float64(h[1]) * decay}
				want[arm][user] = tl
			}
			if n%4 != 0 { // most carry serving flags
				e.ServerLatency = time.Duration(1+rng.IntN(30)) * time.Millisecond
				e.FeaturesDegraded, e.ModelFallback = rng.IntN(10) == 0, rng.IntN(20) == 0
			}
			exp = append(exp, e)
			tl.x++
			if e.ServerLatency > 0 {
				flagged++
				latency[LatencyBucket(e.ServerLatency)]++
				if e.FeaturesDegraded {
					fd++
				}
				if e.ModelFallback {
					mf++
				}
			}
			if rng.Float64() < 0.2 {
				c := e
				c.ID, c.Kind = e.ID+"-c", Click
				exp = append(exp, c) // flags on a click count in no guardrail
				tl.y++
			}
		}
		for i := 0; i < len(exp); i += 97 {
			if _, err := s.ApplyEvents(ctx, exp[i:min(i+97, len(exp))]); err != nil {
				t.Fatal(err)
			}
		}
		if res, err := s.ApplyEvents(ctx, exp); err != nil || res.Applied != 0 {
			t.Fatalf("applying again = %+v, %v; want only duplicates", res, err)
		}
		counts, stats, err := s.ExperimentStats(ctx, "x1")
		if err != nil {
			t.Fatal(err)
		}
		if len(counts) != 2 || len(stats) != 2 || stats[0].Arm != "control" || stats[1].Arm != "treatment" {
			t.Fatalf("ExperimentStats(x1) = %+v, %+v; want two arms", counts, stats)
		}
		var gotFlagged, gotFD, gotMF int64
		gotLatency := map[int]int64{}
		for _, a := range stats {
			var ref UserSums
			for _, tl := range want[a.Arm] {
				v := [4]float64{tl.y, tl.x, tl.c, tl.m}
				ref.Users++
				for j := range v {
					ref.Sum[j] += v[j]
					for k := range v {
						ref.Prod[j][k] += v[j] * v[k]
					}
				}
			}
			if a.Users != ref.Users {
				t.Errorf("arm %s: %d users, want %d", a.Arm, a.Users, ref.Users)
			}
			for j := range ref.Sum {
				if !near(a.Sum[j], ref.Sum[j]) {
					t.Errorf("arm %s: sum[%s] = %v, want %v", a.Arm, sumNames[j], a.Sum[j], ref.Sum[j])
				}
				for k := range ref.Sum {
					if !near(a.Prod[j][k], ref.Prod[j][k]) {
						t.Errorf("arm %s: sum of %s·%s = %v, want %v", a.Arm, sumNames[j], sumNames[k], a.Prod[j][k], ref.Prod[j][k])
					}
				}
			}
			for _, c := range counts {
				if c.Arm == a.Arm && (float64(c.Impressions) != a.Sum[SumImpressions] || float64(c.Clicks) != a.Sum[SumClicks]) {
					t.Errorf("arm %s: counters say %d impressions, %d clicks; the user sums %v, %v", a.Arm, c.Impressions, c.Clicks, a.Sum[SumImpressions], a.Sum[SumClicks])
				}
			}
			gotFlagged += a.Flagged
			gotFD += a.FeatureFallbacks
			gotMF += a.ModelFallbacks
			for b, n := range a.Latency {
				gotLatency[b] += n
			}
		}
		if gotFlagged != flagged || gotFD != fd || gotMF != mf {
			t.Errorf("guardrail counts = %d flagged, %d feature and %d model fallbacks; want %d, %d, %d", gotFlagged, gotFD, gotMF, flagged, fd, mf)
		}
		if fmt.Sprint(gotLatency) != fmt.Sprint(latency) {
			t.Errorf("latency histogram = %v, want %v", gotLatency, latency)
		}
	})
}

// TestPreExposureIsFirstExposure: the covariate is what the user did
// before their first event in the arm; their activity afterwards (in the
// experiment or not) does not change it.
func TestPreExposureIsFirstExposure(t *testing.T) {
	forEachBackend(t, t0, func(t *testing.T, s *Store, _ redis.UniversalClient) {
		ctx := context.Background()
		apply := func(evs ...Event) {
			t.Helper()
			if _, err := s.ApplyEvents(ctx, evs); err != nil {
				t.Fatal(err)
			}
		}
		apply(Event{ID: "p1", Kind: Impression, UserID: "u", ItemID: "i", Time: t0}, Event{ID: "p2", Kind: Click, UserID: "u", ItemID: "i", Time: t0})
		in := func(id string, kind EventKind) Event {
			return Event{ID: id, Kind: kind, UserID: "u", ItemID: "i", Time: t0, ExperimentID: "x", Arm: "a"}
		}
		apply(in("x1", Impression))
		apply(Event{ID: "p3", Kind: Click, UserID: "u", ItemID: "j", Time: t0}, in("x2", Impression), in("x3", Click))
		_, stats, err := s.ExperimentStats(ctx, "x")
		if err != nil {
			t.Fatal(err)
		}
		want := UserSums{Users: 1, Sum: [4]float64{1, 2, 1, 1}}
		v := want.Sum
		for j := range v {
			for k := range v {
				want.Prod[j][k] = v[j] * v[k]
			}
		}
		if len(stats) != 1 || stats[0].UserSums != want {
			t.Errorf("ExperimentStats(x) = %+v, want %+v", stats, want)
		}
	})
}

func TestLatencyBucket(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, 999 * time.Microsecond, time.Millisecond, 7 * time.Millisecond, 2 * time.Second} {
		b := LatencyBucket(d)
		if up := LatencyBucketUpper(b); up < d-time.Nanosecond || (b > 0 && LatencyBucketUpper(b-1) >= d) {
			t.Errorf("LatencyBucket(%v) = %d, whose range (%v, %v] does not hold it", d, b, LatencyBucketUpper(b-1), up)
		}
	}
}
