// Package testenv hands each test a Redis and a Kafka broker of its own:
// real servers when the environment names them (CI does; `make deps-up`
// starts both), a redis-server from PATH, or else the embedded servers
// (libs/embedded). The test log says which one a test got.
//
// Environment:
//
//	RECSYS_TEST_REDIS_ADDR     host:port of a Redis to use
//	RECSYS_TEST_KAFKA_BROKERS  comma-separated Kafka bootstrap brokers
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/segmentio/kafka-go"

	"github.com/recsys/recsys/libs/embedded"
)

// Kind says which backend a test got.
type Kind string

// The backends, in the order they are tried.
const (
	FromEnv  Kind = "environment"
	Process  Kind = "redis-server process"
	Embedded Kind = "embedded"
)

// Redis is one test's Redis. Keys the test writes must start with Prefix,
// so tests sharing a server never see each other's data.
type Redis struct {
	Addr   string
	Kind   Kind
	Prefix string
	// Mini is the embedded server when Kind is Embedded (for FastForward).
	Mini *miniredis.Miniredis
}

// NewRedis returns a Redis for t, stopped (when the test started it) at the
// end of the test.
func NewRedis(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{Prefix: "t-" + suffix(t) + ":"}
	switch {
	case os.Getenv("RECSYS_TEST_REDIS_ADDR") != "":
		r.Addr, r.Kind = os.Getenv("RECSYS_TEST_REDIS_ADDR"), FromEnv
	default:
		if path, err := exec.LookPath("redis-server"); err == nil {
			r.Addr, r.Kind = StartRedisServer(t, path), Process
			break
		}
		m, err := embedded.StartRedis("")
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		t.Cleanup(m.Close)
		r.Mini = m
		r.Addr, r.Kind = m.Addr(), Embedded
	}
	t.Logf("testenv: Redis %s at %s, key prefix %q", r.Kind, r.Addr, r.Prefix)
	return r
}

// StartRedisServer starts redis-server (at path) on a free loopback port
// with the extra arguments, and stops it by PID when the test ends.
func StartRedisServer(t testing.TB, path string, args ...string) string {
	t.Helper()
	port := FreePort(t)
	dir := t.TempDir()
	cmd := exec.Command(path, append([]string{
		"--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", dir, "--logfile", filepath.Join(dir, "redis.log"),
	}, args...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv: start redis-server: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	WaitForPort(t, addr, 10*time.Second)
	return addr
}

// Kafka is one test's Kafka. Topic names the test creates should come from
// Topic, so tests sharing a broker never share a topic.
type Kafka struct {
	Brokers []string
	Kind    Kind
	suffix  string
}

// NewKafka returns a Kafka broker for t.
func NewKafka(t testing.TB) *Kafka {
	t.Helper()
	k := &Kafka{suffix: suffix(t)}
	switch {
	case os.Getenv("RECSYS_TEST_KAFKA_BROKERS") != "":
		k.Brokers, k.Kind = strings.Split(os.Getenv("RECSYS_TEST_KAFKA_BROKERS"), ","), FromEnv
	default:
		addr, stop, err := embedded.StartKafka("")
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		t.Cleanup(stop)
		k.Brokers, k.Kind = []string{addr}, Embedded
	}
	t.Logf("testenv: Kafka %s at %v", k.Kind, k.Brokers)
	return k
}

// Topic returns a topic name unique to this test and creates it with the
// given number of partitions.
func (k *Kafka) Topic(t testing.TB, name string, partitions int) string {
	t.Helper()
	topic := name + "." + k.suffix
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := (&kafka.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", k.Brokers[0])
	if err != nil {
		t.Fatalf("testenv: dial Kafka %s: %v", k.Brokers[0], err)
	}
	defer conn.Close()
	ctrl, err := conn.Controller()
	if err != nil {
		t.Fatalf("testenv: Kafka controller: %v", err)
	}
	cc, err := (&kafka.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", net.JoinHostPort(ctrl.Host, fmt.Sprint(ctrl.Port)))
	if err != nil {
		t.Fatalf("testenv: dial Kafka controller: %v", err)
	}
	defer cc.Close()
	if err := cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatalf("testenv: create topic %s: %v", topic, err)
	}
	return topic
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreePorts returns n distinct loopback TCP ports that were free a moment
// ago (held open together while chosen, so no two are the same).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testenv: free port: %v", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// WaitForPort waits until addr accepts TCP connections.
func WaitForPort(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("testenv: %s did not accept connections within %s", addr, timeout)
}

func suffix(t testing.TB) string {
	b := make([]byte, 4)
	rand.Read(b)
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 40 {
		name = name[:40]
	}
	return name + "-" + hex.EncodeToString(b)
}
