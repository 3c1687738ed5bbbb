// Package featurestore is the online feature store on Redis: static user
// profiles and item attributes, and the real-time features that the click
// stream updates (decayed counts, smoothed CTR, category affinity, recent
// clicks, consumed history, trending scores).
//
// Key layout. Every key of one entity carries the entity id as its hash tag,
// so on Redis Cluster one entity lives in one slot and its scripts are
// atomic:
//
//	<ns>u:{<user>}          hash: profile fields p:*, counters c:*, affinity aff:<category>
//	<ns>u:{<user>}:recent   sorted set: clicked item → last click time (ms), newest HistoryLength
//	<ns>u:{<user>}:hist     sorted set: consumed item → last consumption time (ms), newest HistoryLength
//	<ns>u:{<user>}:seen:<event>  de-duplication marker (expires)
//	<ns>i:{<item>}          hash: attributes a:*, counters c:*, trend (as in {trending}:all)
//	<ns>i:{<item>}:seen:<event>
//	<ns>{trending}:all      sorted set: item → trending log-score
//	<ns>{trending}:c:<cat>  the same within one category
//	<ns>{trending}:seen:<event>
//	<ns>{exp:<id>}          hash: <arm>␟<model version>␟impressions|clicks → count
//	<ns>{exp:<id>}:users:<arm>␟<model version>  HyperLogLog of users
//	<ns>{exp:<id>}:seen:<event>
//
// A read of any number of entities is one pipelined round trip.
//
// A Store is safe for concurrent use. It does not own its Redis client.
package featurestore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DedupWindow is how long an applied event id is remembered; a redelivery
// later than that would count again.
const DedupWindow = 7 * 24 * time.Hour

// Store reads and writes features.
type Store struct {
	rdb  redis.UniversalClient
	base string
	// gen is the generation in use: keys are <base><gen>... Readers and
	// the stream processor follow the generation that <base>active names
	// (Follow), so a rebuild can switch them all at once.
	gen   atomic.Pointer[string]
	fixed bool // gen is pinned (a rebuild's target)
	now   func() time.Time
}

// Option configures a Store.
type Option func(*Store)

// WithClock sets the clock reads decay to (tests).
func WithClock(now func() time.Time) Option { return func(s *Store) { s.now = now } }

// New returns a Store over rdb whose keys start with namespace (may be "";
// must not contain '{').
func New(rdb redis.UniversalClient, namespace string, opts ...Option) (*Store, error) {
	if strings.ContainsAny(namespace, "{}") {
		return nil, fmt.Errorf("feature store namespace %q: must not contain braces", namespace)
	}
	s := &Store{rdb: rdb, base: namespace, now: time.Now}
	empty := ""
	s.gen.Store(&empty)
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// keyspace builds the keys of one generation; an operation takes it once,
// so all its keys are of the same generation even across a switch.
type keyspace string

func (s *Store) keys() keyspace { return keyspace(s.base + *s.gen.Load()) }

// ItemKey is the Redis key of an item's hash in the generation in use: for
// benchmarks that compare a read with raw Redis commands on the same keys.
func (s *Store) ItemKey(id string) string { return s.keys().itemKey(id) }

// oneNode says every key is on one server (not Redis Cluster), so one
// script may touch keys of any slot: an event is then one script call.
func (s *Store) oneNode() bool {
	_, ok := s.rdb.(*redis.Client)
	return ok
}

func (k keyspace) userKey(id string) string    { return string(k) + "u:{" + id + "}" }
func (k keyspace) recentKey(id string) string  { return string(k) + "u:{" + id + "}:recent" }
func (k keyspace) historyKey(id string) string { return string(k) + "u:{" + id + "}:hist" }
func (k keyspace) itemKey(id string) string    { return string(k) + "i:{" + id + "}" }
func (k keyspace) trendingKey(cat string) string {
	if cat == "" {
		return string(k) + "{trending}:all"
	}
	return string(k) + "{trending}:c:" + cat
}

func (k keyspace) experimentKey(id string) string { return string(k) + "{exp:" + id + "}" }

// ErrInvalid wraps every input error, so callers can tell bad input from a
// failing Redis with errors.Is.
var ErrInvalid = errors.New("invalid input")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// runScripts executes a pipeline of script calls; when Redis has lost its
// script cache (a restart, a failover) it loads the scripts and runs the
// pipeline once more. Every script here is idempotent, so the retry cannot
// double-apply.
func (s *Store) runScripts(ctx context.Context, fill func(redis.Pipeliner)) ([]redis.Cmder, error) {
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		fill(pipe)
		cmds, err := pipe.Exec(ctx)
		if err == nil {
			return cmds, nil
		}
		if attempt > 0 || !redis.HasErrorPrefix(err, "NOSCRIPT") {
			return nil, fmt.Errorf("redis: %w", err)
		}
		for _, sc := range scripts {
			if err := sc.Load(ctx, s.rdb).Err(); err != nil {
				return nil, fmt.Errorf("redis: load script: %w", err)
			}
		}
	}
}
