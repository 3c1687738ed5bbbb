package featurestore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// Generation is the generation the store uses now.
func (s *Store) Generation() string { return *s.gen.Load() }

// Refresh reads the active generation once. A store pinned by
// WithGeneration ignores it.
func (s *Store) Refresh(ctx context.Context) error {
	if s.fixed {
		return nil
	}
	g, err := s.rdb.Get(ctx, s.activeKey()).Result()
	if errors.Is(err, redis.Nil) {
		g, err = "", nil
	}
	if err != nil {
		return fmt.Errorf("redis: read the active generation: %w", err)
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
	t := &Store{rdb: s.rdb, base: s.base, fixed: true, oneNode: s.oneNode, now: s.now}
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
// generation into to's, and returns how many entities it copied.
func (s *Store) CopyStatic(ctx context.Context, to *Store) (int, error) {
	from, dst := s.keys(), to.keys()
	var n atomic.Int64 // masters are scanned concurrently
	scan := func(ctx context.Context, c *redis.Client) error {
		for _, pattern := range []string{string(from) + "u:{*}", string(from) + "i:{*}"} {
			it := c.Scan(ctx, 0, pattern, 500).Iterator()
			for it.Next(ctx) {
				key := it.Val()
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
			if err := it.Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	switch c := s.rdb.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		err = fmt.Errorf("copy static features: unsupported client %T", s.rdb)
	}
	if err != nil {
		return int(n.Load()), fmt.Errorf("redis: copy static features: %w", err)
	}
	return int(n.Load()), nil
}
