// Package embedded runs in-process stand-ins for the platform's standard
// servers: a Redis-compatible server (miniredis) and a Kafka-compatible
// broker (kfake). They serve make run (services/local) and tests
// (libs/testenv); production binaries never import this package, so they
// carry neither server (deploy/manifeststest checks their dependencies).
package embedded

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/alicebob/miniredis/v2"
	"github.com/twmb/franz-go/pkg/kfake"
)

// StartRedis starts a Redis-compatible server on addr (host:port; "" or
// port 0 picks a free loopback port). The caller closes it when done.
func StartRedis(addr string) (*miniredis.Miniredis, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err != nil {
		return nil, fmt.Errorf("start embedded Redis on %s: %w", addr, err)
	}
	return m, nil
}

// StartKafka starts a single-broker Kafka-compatible cluster on loopback
// at addr's port ("" or port 0: a free port), with 3 partitions per topic
// and topics created on first use. It returns the broker's address and
// the function that stops it. An error for a port in use wraps
// syscall.EADDRINUSE (see InUse).
func StartKafka(addr string) (string, func(), error) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.DefaultNumPartitions(3), kfake.AllowAutoTopicCreation()}
	if addr != "" {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return "", nil, fmt.Errorf("embedded Kafka address %q: %w", addr, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return "", nil, fmt.Errorf("embedded Kafka address %q: bad port", addr)
		}
		if p != 0 {
			opts = append(opts, kfake.Ports(p))
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return "", nil, fmt.Errorf("start embedded Kafka on %s: %w", addr, err)
	}
	return c.ListenAddrs()[0], c.Close, nil
}

// InUse reports whether err says the address asked for was taken.
func InUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }
