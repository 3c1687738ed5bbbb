package featurestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Generations let the stream processor rebuild every real-time feature from
// the event log into fresh keys and switch everyone over at once: the key
// <namespace>active names the generation in use ("" at first, then
// "g<millis>:"), and each Store follows it.

func (s *Store) activeKey() string { return s.base + "active" }

// active reads the active generation.
func (s *Store) active(ctx context.Context) (string, error) {
	g, err := s.rdb.Get(ctx, s.activeKey()).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redis: read the active generation: %w", err)
	}
	return g, nil
}

// Generation is the generation the store uses now.
func (s *Store) Generation() string { return *s.gen.Load() }

// Refresh reads the active generation once. A store pinned by
// WithGeneration ignores it.
func (s *Store) Refresh(ctx context.Context) error {
	if s.fixed {
		return nil
	}
	g, err := s.active(ctx)
	if err != nil {
		return err
	}
	if g != s.Generation() {
		s.gen.Store(&g)
	}
	return nil
}

// Follow refreshes the generation every interval until ctx is done. Run it
// in a goroutine the caller owns; readers switch within one interval.
func (s *Store) Follow(ctx context.Context, every time.Duration, logger *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		before := s.Generation()
		rctx, cancel := context.WithTimeout(ctx, every)
		err := s.Refresh(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			logger.Warn("could not check the feature generation; keeping the current one", "err", err)
		} else if g := s.Generation(); g != before {
			logger.Info("feature generation switched", "from", before, "to", g)
		}
	}
}

// WithGeneration returns a store over the same Redis pinned to generation
// gen (a rebuild's target).
func (s *Store) WithGeneration(gen string) *Store {
	t := &Store{rdb: s.rdb, base: s.base, fixed: true, now: s.now}
	t.gen.Store(&gen)
	return t
}

// Switch makes gen the active generation for every store that follows it.
// The switch itself is one atomic SET.
func (s *Store) Switch(ctx context.Context, gen string) error {
	if err := s.rdb.Set(ctx, s.activeKey(), gen, 0).Err(); err != nil {
		return fmt.Errorf("redis: switch to generation %q: %w", gen, err)
	}
	return nil
}

// CopyStatic copies the static part of every entity (profiles, item
// attributes: what the event log cannot rebuild) from this store's current
// generation into to's, and returns how many entities it copied. The
// real-time state (counters, recent clicks, history) is left to the log's
// replay; what a batch load wrote there directly, not through the log
// (ingest's ratings), the new generation does not have.
func (s *Store) CopyStatic(ctx context.Context, to *Store) (int, error) {
	from, dst := s.keys(), to.keys()
	prefix := globEscape(string(from))
	var n atomic.Int64 // masters are scanned concurrently
	err := s.scanKeys(ctx, []string{prefix + "u:{*}", prefix + "i:{*}"}, func(ctx context.Context, c *redis.Client, keys []string) error {
		for _, key := range keys {
			h, err := c.HGetAll(ctx, key).Result()
			if err != nil {
				return err
			}
			var fields []any
			for f, v := range h {
				if strings.HasPrefix(f, profileTag) || strings.HasPrefix(f, attrTag) {
					fields = append(fields, f, v)
				}
			}
			if len(fields) == 0 {
				continue
			}
			if err := s.rdb.HSet(ctx, string(dst)+strings.TrimPrefix(key, string(from)), fields...).Err(); err != nil {
				return err
			}
			n.Add(1)
		}
		return nil
	})
	if err != nil {
		return int(n.Load()), fmt.Errorf("redis: copy static features: %w", err)
	}
	return int(n.Load()), nil
}

// scanKeys hands f the keys matching each pattern, in batches of up to
// 1000, from every node that holds keys (a cluster's masters
// concurrently), with the node's own client.
func (s *Store) scanKeys(ctx context.Context, patterns []string, f func(context.Context, *redis.Client, []string) error) error {
	scan := func(ctx context.Context, c *redis.Client) error {
		for _, pattern := range patterns {
			it := c.Scan(ctx, 0, pattern, 1000).Iterator()
			batch := make([]string, 0, 1000)
			for it.Next(ctx) {
				if batch = append(batch, it.Val()); len(batch) == cap(batch) {
					if err := f(ctx, c, batch); err != nil {
						return err
					}
					batch = batch[:0]
				}
			}
			if err := it.Err(); err != nil {
				return err
			}
			if len(batch) > 0 {
				if err := f(ctx, c, batch); err != nil {
					return err
				}
			}
		}
		return nil
	}
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, scan)
	case *redis.Client:
		return scan(ctx, c)
	}
	return fmt.Errorf("unsupported Redis client %T", s.rdb)
}

// DropGeneration deletes every key of generation gen: features, recent
// clicks, history, de-duplication markers, trending sets and experiment
// counters, all that a rebuild leaves behind in the generation it switched
// away from. It refuses the active generation. deleted, when set, is told of
// each batch of keys deleted (concurrently from a cluster's masters). It
// returns how many keys it deleted.
func (s *Store) DropGeneration(ctx context.Context, gen string, deleted func(n int)) (int, error) {
	if !generationName.MatchString(gen) {
		return 0, invalid("generation %q: want \"\" (the first) or g<digits>: as a rebuild names them", gen)
	}
	active, err := s.active(ctx)
	if err != nil {
		return 0, err
	}
	if gen == active {
		return 0, invalid("generation %q is the active one; only a generation readers have left can be dropped", gen)
	}
	// Each pattern starts with the generation's whole prefix and a
	// character no generation name starts with, so the default generation
	// "" never matches the keys of "g<millis>:".
	prefix := globEscape(s.base + gen)
	var n atomic.Int64
	err = s.scanKeys(ctx, []string{prefix + "u:{*", prefix + "i:{*", prefix + "{trending}*", prefix + "{exp:*"}, func(ctx context.Context, c *redis.Client, keys []string) error {
		pipe := c.Pipeline()
		for _, key := range keys { // one key per command: on a cluster, a batch spans slots
			pipe.Unlink(ctx, key)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return err
		}
		n.Add(int64(len(keys)))
		if deleted != nil {
			deleted(len(keys))
		}
		return nil
	})
	if err != nil {
		return int(n.Load()), fmt.Errorf("redis: drop generation %q: %w", gen, err)
	}
	return int(n.Load()), nil
}

// generationName matches the generations there are: "" and a rebuild's
// "g<millis>:".
var generationName = regexp.MustCompile(`^(g[0-9]+:)?$`)

// globEscape escapes what SCAN MATCH would read as a wildcard.
func globEscape(s string) string {
	var b strings.Builder
	for i := range len(s) { // bytes: a namespace need not be UTF-8
		if strings.IndexByte(`*?[]\`, s[i]) >= 0 {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
