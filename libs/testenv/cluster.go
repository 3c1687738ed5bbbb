package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// NewRedisCluster returns the addresses of a Redis Cluster with three
// masters: RECSYS_TEST_REDIS_CLUSTER_ADDRS when set, else one it starts from
// redis-server and redis-cli on PATH (stopped when the test ends). Without
// either, the test is skipped with that reason.
func NewRedisCluster(t testing.TB) *Redis {
	t.Helper()
	r := &Redis{Prefix: "t-" + suffix(t) + ":"}
	if env := os.Getenv("RECSYS_TEST_REDIS_CLUSTER_ADDRS"); env != "" {
		r.Addr, r.Kind = env, FromEnv
		t.Logf("testenv: Redis Cluster %s at %s", r.Kind, r.Addr)
		return r
	}
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		t.Skip("testenv: no Redis Cluster: set RECSYS_TEST_REDIS_CLUSTER_ADDRS or install redis-server and redis-cli")
	}
	var addrs []string
	for range 3 {
		addrs = append(addrs, StartRedisServer(t, server, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"))
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("testenv: redis-cli --cluster create: %v\n%s", err, out)
	}
	// Wait until every node agrees the cluster is up.
	ctx := context.Background()
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		ok := false
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			if info, err := c.ClusterInfo(ctx).Result(); err == nil && strings.Contains(info, "cluster_state:ok") {
				ok = true
				break
			}
		}
		c.Close()
		if !ok {
			t.Fatalf("testenv: Redis Cluster node %s never reached cluster_state:ok", a)
		}
	}
	r.Addr, r.Kind = strings.Join(addrs, ","), Process
	t.Logf("testenv: Redis Cluster %s at %s", r.Kind, fmt.Sprint(addrs))
	return r
}
