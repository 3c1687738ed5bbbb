package featurestore

import (
	"fmt"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// DialHelp documents the values Dial accepts, for flag usage strings.
const DialHelp = "Redis to use: host:port (single node), cluster://host:port,host:port,... (Redis Cluster), " +
	"embedded (an in-process Redis-compatible server on a free port) or embedded://host:port"

// Dial connects to the Redis that spec names (see DialHelp). Every command
// has a deadline even when its context has none. The returned close function
// closes the client and stops an embedded server.
func Dial(spec string) (redis.UniversalClient, func() error, error) {
	const (
		dialTimeout = 2 * time.Second
		ioTimeout   = time.Second
	)
	switch {
	case spec == "embedded" || strings.HasPrefix(spec, "embedded://"):
		m := miniredis.NewMiniRedis()
		addr := strings.TrimPrefix(strings.TrimPrefix(spec, "embedded"), "://")
		if addr == "" {
			addr = "127.0.0.1:0"
		}
		if err := m.StartAddr(addr); err != nil {
			return nil, nil, fmt.Errorf("start embedded Redis on %s: %w", addr, err)
		}
		c := redis.NewClient(&redis.Options{Addr: m.Addr(), DialTimeout: dialTimeout, ReadTimeout: ioTimeout, WriteTimeout: ioTimeout})
		return c, func() error { err := c.Close(); m.Close(); return err }, nil
	case strings.HasPrefix(spec, "cluster://"):
		addrs := strings.Split(strings.TrimPrefix(spec, "cluster://"), ",")
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialTimeout: dialTimeout, ReadTimeout: ioTimeout, WriteTimeout: ioTimeout})
		return c, c.Close, nil
	case spec == "":
		return nil, nil, fmt.Errorf("no Redis given: %s", DialHelp)
	default:
		opts, err := redis.ParseURL(spec)
		if err != nil {
			opts = &redis.Options{Addr: spec}
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = dialTimeout, ioTimeout, ioTimeout
		c := redis.NewClient(opts)
		return c, c.Close, nil
	}
}
