package featurestore

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// armSep joins arm, model version and counter in experiment keys.
const armSep = "\x1f"

func armKey(arm, version string) string { return arm + armSep + version }

// ArmCounts is what one arm (at one model version) of an experiment saw.
type ArmCounts struct {
	Arm          string
	ModelVersion string
	Impressions  int64
	Clicks       int64
	UniqueUsers  int64 // estimated (HyperLogLog, ~1% error)
}

// Experiment returns the counts of every arm of an experiment, sorted by
// arm and model version; none when the experiment has no events. Two round
// trips.
func (s *Store) Experiment(ctx context.Context, id string) ([]ArmCounts, error) {
	k := s.keys()
	if id == "" || strings.ContainsAny(id, "{}") {
		return nil, invalid("experiment_id %q: want a non-empty id without braces", id)
	}
	exp := k.experimentKey(id)
	fields, err := s.rdb.HGetAll(ctx, exp).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: read experiment %s: %w", id, err)
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
	pipe := s.rdb.Pipeline()
	users := map[string]*redis.IntCmd{}
	for key := range arms {
		users[key] = pipe.PFCount(ctx, exp+":users:"+key)
	}
	if len(users) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("redis: read experiment %s users: %w", id, err)
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
	return out, nil
}
