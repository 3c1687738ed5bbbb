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
// has a deadline even when its context has none, and stops at its
// context's deadline when that comes first (so a caller's deadline cancels
// the Redis work too). The returned close function
// closes the client and stops an embedded server.
func Dial(spec string) (redis.UniversalClient, func() error, error) {
	const (
		dialTimeout = 2 * time.Second
		ioTimeout   = time.Second
	)
	switch {
	case IsEmbedded(spec):
		addr, stop, err := StartEmbedded(spec)
		if err != nil {
			return nil, nil, err
		}
		c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: dialTimeout, ReadTimeout: ioTimeout, WriteTimeout: ioTimeout, ContextTimeoutEnabled: true})
		return c, func() error { err := c.Close(); stop(); return err }, nil
	case strings.HasPrefix(spec, "cluster://"):
		addrs := strings.Split(strings.TrimPrefix(spec, "cluster://"), ",")
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialTimeout: dialTimeout, ReadTimeout: ioTimeout, WriteTimeout: ioTimeout, ContextTimeoutEnabled: true})
		return c, c.Close, nil
	case spec == "":
		return nil, nil, fmt.Errorf("no Redis given: %s", DialHelp)
	default:
		opts, err := redis.ParseURL(spec)
		if err != nil {
			opts = &redis.Options{Addr: spec}
		}
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = dialTimeout, ioTimeout, ioTimeout
		opts.ContextTimeoutEnabled = true
		c := redis.NewClient(opts)
		return c, c.Close, nil
	}
}

// IsEmbedded reports whether spec asks for the embedded server.
func IsEmbedded(spec string) bool {
	return spec == "embedded" || strings.HasPrefix(spec, "embedded://")
}

// StartEmbedded starts the embedded Redis-compatible server (miniredis) that
// spec names ("embedded" picks a free port) and returns its address and the
// function that stops it.
func StartEmbedded(spec string) (addr string, stop func(), err error) {
	m := miniredis.NewMiniRedis()
	addr = strings.TrimPrefix(strings.TrimPrefix(spec, "embedded"), "://")
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := m.StartAddr(addr); err != nil {
		return "", nil, fmt.Errorf("start embedded Redis on %s: %w (pass a free address, e.g. -redis=embedded, or a real Redis's host:port)", addr, err)
	}
	return m.Addr(), m.Close, nil
}

// Open dials the Redis that spec names and returns a Store over it with the
// namespace, and the function that closes both.
func Open(spec, namespace string, opts ...Option) (*Store, func() error, error) {
	rdb, closeRedis, err := Dial(spec)
	if err != nil {
		return nil, nil, err
	}
	s, err := New(rdb, namespace, opts...)
	if err != nil {
		closeRedis()
		return nil, nil, err
	}
	return s, closeRedis, nil
}
