package featurestore

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Experiment keys, all in the experiment's slot (so on Redis Cluster one
// event's experiment part is one atomic script):
//
//	<ns>{exp:<id>}                             hash: <arm>␟<version>␟impressions|clicks → count
//	<ns>{exp:<id>}:users:<arm>␟<version>       HyperLogLog of users
//	<ns>{exp:<id>}:u:<arm>                     hash: user → "clicks impressions pre-clicks pre-impressions"
//	<ns>{exp:<id>}:arm:<arm>                   hash: the arm's user-level sums (below) and guardrail counts
//	<ns>{exp:<id>}:seen:<event>                de-duplication marker
//
// The arm hash holds n (users), the sums y, x, c, m of the users' clicks,
// impressions, pre-experiment clicks and pre-experiment impressions, and
// the sums of their products yy, yx, yc, ym, xx, xc, xm, cc, cm, mm. Each
// event changes one user's y or x by one, so the script adds the change
// of that user's terms (for yy: (y+1)² − y² = 2y + 1): a report reads one
// hash per arm instead of scanning the users. Memory is one field per
// exposed user and arm, plus a constant per arm. Guardrail fields: g
// (impressions that carried serving flags), fd and mf (those ranked with
// default features, without a model), l<b> (their server latency
// histogram, LatencyBucket).

// armSep joins arm, model version and counter in experiment keys.
const armSep = "\x1f"

func armKey(arm, version string) string { return arm + armSep + version }

func (k keyspace) armStatsKey(id, arm string) string { return k.experimentKey(id) + ":arm:" + arm }
func (k keyspace) armUsersKey(id, arm string) string { return k.experimentKey(id) + ":u:" + arm }

// ArmCounts is what one arm (at one model version) of an experiment saw.
type ArmCounts struct {
	Arm          string
	ModelVersion string
	Impressions  int64
	Clicks       int64
	UniqueUsers  int64 // estimated (HyperLogLog, ~1% error)
}

// The per-user quantities of UserSums, in the order of its arrays.
const (
	SumClicks = iota
	SumImpressions
	SumPreClicks
	SumPreImpressions
)

// sumNames are the letters of the per-user quantities in the arm hash.
var sumNames = [4]string{"y", "x", "c", "m"}

// UserSums are the sufficient statistics of an arm's users: their number
// and, over them, the sums and the sums of products of each user's clicks,
// impressions, and pre-experiment clicks and impressions (the user's
// 7-day decayed counters at their first exposure in the experiment),
// indexed by SumClicks...SumPreImpressions.
type UserSums struct {
	Users int64
	Sum   [4]float64
	Prod  [4][4]float64 // symmetric
}

// ArmStats is one arm of an experiment at the level of its users, with
// its guardrail counts.
type ArmStats struct {
	Arm string
	UserSums
	// Impressions that carried serving flags, and of those, the ones
	// ranked with default features and without a model.
	Flagged, FeatureFallbacks, ModelFallbacks int64
	// Latency histogram of the flagged impressions: LatencyBucket → count.
	Latency map[int]int64
}

// Latency histogram buckets: latencyPerOctave per doubling from one
// microsecond, so a bucket is 2^(1/8) ≈ 9% wide.
const latencyPerOctave = 8

// LatencyBucket is the histogram bucket of a server latency.
func LatencyBucket(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	return int(math.Ceil(latencyPerOctave * math.Log2(us)))
}

// LatencyBucketUpper is the largest latency in bucket b.
func LatencyBucketUpper(b int) time.Duration {
	return time.Duration(math.Exp2(float64(b)/latencyPerOctave) * float64(time.Microsecond))
}

// Experiment returns the counts of every arm of an experiment, sorted by
// arm and model version; none when the experiment has no events. Two round
// trips.
func (s *Store) Experiment(ctx context.Context, id string) ([]ArmCounts, error) {
	counts, _, err := s.experiment(ctx, id, false)
	return counts, err
}

// ExperimentStats returns, besides what Experiment does, every arm's
// user-level sums and guardrail counts, sorted by arm. Two round trips.
func (s *Store) ExperimentStats(ctx context.Context, id string) ([]ArmCounts, []ArmStats, error) {
	return s.experiment(ctx, id, true)
}

func (s *Store) experiment(ctx context.Context, id string, withStats bool) ([]ArmCounts, []ArmStats, error) {
	k := s.keys()
	if id == "" || strings.ContainsAny(id, "{}") {
		return nil, nil, invalid("experiment_id %q: want a non-empty id without braces", id)
	}
	exp := k.experimentKey(id)
	fields, err := s.rdb.HGetAll(ctx, exp).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("redis: read experiment %s: %w", id, err)
	}
	arms := map[string]*ArmCounts{}
	for f, v := range fields {
		parts := strings.Split(f, armSep)
		if len(parts) != 3 {
			continue
		}
		key := armKey(parts[0], parts[1])
		a := arms[key]
		if a == nil {
			a = &ArmCounts{Arm: parts[0], ModelVersion: parts[1]}
			arms[key] = a
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		switch parts[2] {
		case "impressions":
			a.Impressions = n
		case "clicks":
			a.Clicks = n
		}
	}
	names := map[string]bool{}
	pipe := s.rdb.Pipeline()
	users := map[string]*redis.IntCmd{}
	for key, a := range arms {
		users[key] = pipe.PFCount(ctx, exp+":users:"+key)
		names[a.Arm] = true
	}
	stats := map[string]*redis.MapStringStringCmd{}
	if withStats {
		for arm := range names {
			stats[arm] = pipe.HGetAll(ctx, k.armStatsKey(id, arm))
		}
	}
	if len(users) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, nil, fmt.Errorf("redis: read experiment %s users: %w", id, err)
		}
	}
	out := make([]ArmCounts, 0, len(arms))
	for key, a := range arms {
		a.UniqueUsers = users[key].Val()
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Arm != out[j].Arm {
			return out[i].Arm < out[j].Arm
		}
		return out[i].ModelVersion < out[j].ModelVersion
	})
	var armStats []ArmStats
	for arm, cmd := range stats {
		armStats = append(armStats, parseArmStats(arm, cmd.Val()))
	}
	sort.Slice(armStats, func(i, j int) bool { return armStats[i].Arm < armStats[j].Arm })
	return out, armStats, nil
}

func parseArmStats(arm string, f map[string]string) ArmStats {
	num := func(name string) float64 {
		v, _ := strconv.ParseFloat(f[name], 64)
		return v
	}
	a := ArmStats{Arm: arm, Latency: map[int]int64{}}
	a.Users = int64(num("n"))
	for j := range sumNames {
		a.Sum[j] = num(sumNames[j])
		for k := j; k < len(sumNames); k++ {
			a.Prod[j][k] = num(sumNames[j] + sumNames[k])
			a.Prod[k][j] = a.Prod[j][k]
		}
	}
	a.Flagged, a.FeatureFallbacks, a.ModelFallbacks = int64(num("g")), int64(num("fd")), int64(num("mf"))
	for name, v := range f {
		if b, ok := strings.CutPrefix(name, "l"); ok {
			if bi, err := strconv.Atoi(b); err == nil {
				a.Latency[bi], _ = strconv.ParseInt(v, 10, 64)
			}
		}
	}
	return a
}

// preCounts are a user's 7-day decayed clicks and impressions as stored.
type preCounts struct{ clicks, impressions Counter }

// preExposure reads, in one round trip, the 7-day counters of every user
// with an experiment event among events: an experiment's covariate
// (CUPED) is what the user had done before their first exposure, and the
// experiment part of an event cannot read the user's hash itself (on
// Redis Cluster it lives in another slot). Read before the batch is
// applied, they hold none of the batch's events. Nil when no event is in
// an experiment.
func (s *Store) preExposure(ctx context.Context, k keyspace, events []Event) (map[string]preCounts, error) {
	pipe := s.rdb.Pipeline()
	cmds := map[string]*redis.SliceCmd{}
	for _, e := range events {
		if _, ok := cmds[e.UserID]; e.ExperimentID != "" && !ok {
			cmds[e.UserID] = pipe.HMGet(ctx, k.userKey(e.UserID), weekClicks, weekImpressions)
		}
	}
	if len(cmds) == 0 {
		return nil, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("redis: read users' counters before their experiment events: %w", err)
	}
	out := make(map[string]preCounts, len(cmds))
	for user, c := range cmds {
		var p preCounts
		for i, v := range c.Val() {
			sv, _ := v.(string)
			cnt, _ := decodeCounter(sv)
			if i == 0 {
				p.clicks = cnt
			} else {
				p.impressions = cnt
			}
		}
		out[user] = p
	}
	return out, nil
}

// experimentPart is the part of an event that counts it for its
// experiment arm (luaApply's experiment function): kind is "clicks" or
// "impressions", pre the user's counters before the batch, decayed here
// to the event's time.
func experimentPart(k keyspace, e Event, kind string, pre preCounts) part {
	arm, exp := armKey(e.Arm, e.ModelVersion), k.experimentKey(e.ExperimentID)
	week := horizons[len(horizons)-1].halfLife
	pc, pm := pre.clicks.ValueAt(e.Time, week), pre.impressions.ValueAt(e.Time, week)
	bucket, fd, mf := "", 0, 0
	if e.ServerLatency > 0 && e.Kind == Impression { // a ranking's flags count once per item shown
		bucket = strconv.Itoa(LatencyBucket(e.ServerLatency))
		if e.FeaturesDegraded {
			fd = 1
		}
		if e.ModelFallback {
			mf = 1
		}
	}
	return part{"experiment", exp + ":seen:" + e.ID,
		[]string{exp, exp + ":users:" + arm, k.armStatsKey(e.ExperimentID, e.Arm), k.armUsersKey(e.ExperimentID, e.Arm)},
		[]any{arm + armSep + kind, e.UserID, kind, strconv.FormatFloat(pc, 'g', 17, 64), strconv.FormatFloat(pm, 'g', 17, 64), bucket, fd, mf}}
}
