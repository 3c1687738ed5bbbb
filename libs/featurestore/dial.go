package featurestore

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// DialHelp documents the values Dial accepts, for flag usage strings.
const DialHelp = "Redis to use: host:port (single node), redis://... (a URL with options), or cluster://host:port,host:port,... (Redis Cluster)"

// DefaultAddr is every binary's default -redis: Redis's standard port on
// this machine, where make deps-up and make run's embedded server listen.
const DefaultAddr = "localhost:6379"

// DefaultTimeout bounds one command's reads and writes when no timeout is
// given: long enough for a large pipeline on a busy machine or an
// in-process server, short enough that a dead Redis is noticed.
const DefaultTimeout = 5 * time.Second

// RegisterFlags adds the flags of every binary that uses the store, so
// they are written once: -redis (into spec, default localhost:6379) and
// -redis-timeout (into timeout, default DefaultTimeout).
func RegisterFlags(fs *flag.FlagSet, spec *string, timeout *time.Duration) {
	fs.StringVar(spec, "redis", DefaultAddr, DialHelp)
	fs.DurationVar(timeout, "redis-timeout", DefaultTimeout, "longest wait for one Redis command's reply when the caller sets no earlier deadline")
}

// A DialOption configures the client Dial and Open make.
type DialOption func(*dialSettings)

type dialSettings struct{ timeout time.Duration }

// WithTimeout bounds each command's reads and writes (0: DefaultTimeout).
func WithTimeout(d time.Duration) DialOption {
	return func(s *dialSettings) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// Dial connects to the Redis that spec names (see DialHelp). Every command
// has a deadline even when its context has none (WithTimeout), and stops
// at its context's deadline when that comes first (so a caller's deadline
// cancels the Redis work too). The returned function closes the client.
func Dial(spec string, opts ...DialOption) (redis.UniversalClient, func() error, error) {
	s := dialSettings{timeout: DefaultTimeout}
	for _, o := range opts {
		o(&s)
	}
	const dialTimeout = 2 * time.Second
	switch {
	case strings.HasPrefix(spec, "cluster://"):
		addrs := strings.Split(strings.TrimPrefix(spec, "cluster://"), ",")
		c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialTimeout: dialTimeout, ReadTimeout: s.timeout, WriteTimeout: s.timeout, ContextTimeoutEnabled: true})
		return c, c.Close, nil
	case spec == "":
		return nil, nil, fmt.Errorf("no Redis given: %s", DialHelp)
	default:
		o, err := redis.ParseURL(spec)
		if err != nil {
			o = &redis.Options{Addr: spec}
		}
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout = dialTimeout, s.timeout, s.timeout
		o.ContextTimeoutEnabled = true
		c := redis.NewClient(o)
		return c, c.Close, nil
	}
}

// Open dials the Redis that spec names and returns a Store over it with the
// namespace, and the function that closes both.
func Open(spec, namespace string, opts ...DialOption) (*Store, func() error, error) {
	rdb, closeRedis, err := Dial(spec, opts...)
	if err != nil {
		return nil, nil, err
	}
	s, err := New(rdb, namespace)
	if err != nil {
		closeRedis()
		return nil, nil, err
	}
	return s, closeRedis, nil
}
