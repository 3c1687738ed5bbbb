package featurestore

import (
	"crypto/tls"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys/recsys/libs/certs"
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

// Config is how a binary reaches Redis, filled from its flags (and so from
// RECSYS_* environment variables, libs/config) by RegisterFlags: the
// address, a command timeout, and optionally an ACL user and password and
// TLS. It is written once here so that every binary has the same flags.
type Config struct {
	Addr     string        // -redis: DialHelp
	Timeout  time.Duration // -redis-timeout
	Username string        // -redis-user: an ACL user ("": the default user)
	Password string        // -redis-password (better set as RECSYS_REDIS_PASSWORD)
	TLS      bool          // -redis-tls
	CAFile   string        // -redis-ca: the CA that signed Redis's certificate ("": the system's)
	CertFile string        // -redis-cert: a client certificate, for a Redis with tls-auth-clients
	KeyFile  string        // -redis-key
}

// RegisterFlags adds the Redis flags of every binary that uses the store:
// -redis (default DefaultAddr), -redis-timeout, -redis-user,
// -redis-password, -redis-tls, -redis-ca, -redis-cert and -redis-key.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "redis", DefaultAddr, DialHelp)
	fs.DurationVar(&c.Timeout, "redis-timeout", DefaultTimeout, "longest wait for one Redis command's reply when the caller sets no earlier deadline")
	fs.StringVar(&c.Username, "redis-user", "", "Redis ACL user to authenticate as (empty: the default user, or none)")
	fs.StringVar(&c.Password, "redis-password", "", "password of -redis-user; prefer the environment variable RECSYS_REDIS_PASSWORD, which ps does not show")
	fs.BoolVar(&c.TLS, "redis-tls", false, "talk TLS to Redis (implied by -redis-ca, -redis-cert or a rediss:// URL)")
	fs.StringVar(&c.CAFile, "redis-ca", "", "PEM CA certificate that Redis's certificate must chain to (empty: the system's roots)")
	fs.StringVar(&c.CertFile, "redis-cert", "", "PEM client certificate to present to Redis (for tls-auth-clients); with -redis-key")
	fs.StringVar(&c.KeyFile, "redis-key", "", "PEM private key of -redis-cert")
}

// Options returns the dial options that c asks for: its timeout, its
// credentials and its TLS configuration (files read now).
func (c Config) Options() ([]DialOption, error) {
	opts := []DialOption{WithTimeout(c.Timeout)}
	if c.Username != "" || c.Password != "" {
		opts = append(opts, WithCredentials(c.Username, c.Password))
	}
	if c.TLS || c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" {
		t, err := certs.ClientConfig(c.CAFile, c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("redis TLS: %w", err)
		}
		opts = append(opts, WithTLS(t))
	}
	return opts, nil
}

// Open dials the Redis c names and returns a Store over it with the
// namespace, and the function that closes both.
func (c Config) Open(namespace string) (*Store, func() error, error) {
	opts, err := c.Options()
	if err != nil {
		return nil, nil, err
	}
	return Open(c.Addr, namespace, opts...)
}

// A DialOption configures the client Dial and Open make.
type DialOption func(*dialSettings)

type dialSettings struct {
	timeout            time.Duration
	username, password string
	tls                *tls.Config
}

// WithTimeout bounds each command's reads and writes (0: DefaultTimeout).
func WithTimeout(d time.Duration) DialOption {
	return func(s *dialSettings) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// WithCredentials authenticates as an ACL user (AUTH username password;
// an empty username is the default user), overriding any in the address.
func WithCredentials(username, password string) DialOption {
	return func(s *dialSettings) { s.username, s.password = username, password }
}

// WithTLS talks TLS with the given configuration; its server name, when
// empty, is the dialled host (each node's, in a cluster).
func WithTLS(c *tls.Config) DialOption {
	return func(s *dialSettings) { s.tls = c }
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
		o := &redis.ClusterOptions{Addrs: addrs, DialTimeout: dialTimeout, ReadTimeout: s.timeout, WriteTimeout: s.timeout, ContextTimeoutEnabled: true}
		if s.username != "" || s.password != "" {
			o.Username, o.Password = s.username, s.password
		}
		if s.tls != nil {
			o.TLSConfig = s.tls
		}
		c := redis.NewClusterClient(o)
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
		if s.username != "" || s.password != "" {
			o.Username, o.Password = s.username, s.password
		}
		if s.tls != nil {
			o.TLSConfig = s.tls
		}
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
