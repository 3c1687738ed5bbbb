package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recsys/recsys/libs/certs"
)

// SecureRedis is a Redis that speaks TLS only and lets in only an ACL
// user with a password (its default user is off).
type SecureRedis struct {
	Addr     string
	CAFile   string // the CA of its server certificate
	User     string
	Password string
	Kind     Kind
}

// NewSecureRedis returns the TLS+ACL Redis that the environment names
// (RECSYS_TEST_REDIS_TLS_ADDR, _TLS_CA, _USER, _PASSWORD: what
// .ci/secure/start.sh exports), or starts one from redis-server on PATH
// with certificates and a password made for the test; the test is skipped,
// saying why, when there is neither.
func NewSecureRedis(t testing.TB) *SecureRedis {
	t.Helper()
	if addr := os.Getenv("RECSYS_TEST_REDIS_TLS_ADDR"); addr != "" {
		r := &SecureRedis{Addr: addr, CAFile: os.Getenv("RECSYS_TEST_REDIS_TLS_CA"), User: os.Getenv("RECSYS_TEST_REDIS_USER"), Password: os.Getenv("RECSYS_TEST_REDIS_PASSWORD"), Kind: FromEnv}
		if r.CAFile == "" || r.User == "" || r.Password == "" {
			t.Fatalf("testenv: RECSYS_TEST_REDIS_TLS_ADDR needs RECSYS_TEST_REDIS_TLS_CA, RECSYS_TEST_REDIS_USER and RECSYS_TEST_REDIS_PASSWORD")
		}
		t.Logf("testenv: TLS+ACL Redis %s at %s", r.Kind, r.Addr)
		return r
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("no TLS+ACL Redis: RECSYS_TEST_REDIS_TLS_ADDR is unset (.ci/run and make deps-up set it) and no redis-server on PATH to start one")
	}
	dir := t.TempDir()
	if err := certs.WriteFiles(dir, []string{"redis"}, time.Hour); err != nil {
		t.Fatalf("testenv: certificates for Redis: %v", err)
	}
	r := &SecureRedis{CAFile: filepath.Join(dir, "ca.pem"), User: "recsys", Password: randomHex(16), Kind: Process}
	acl := filepath.Join(dir, "users.acl")
	if err := os.WriteFile(acl, []byte("user default off\nuser recsys on >"+r.Password+" ~* &* +@all -@dangerous +info\n"), 0o600); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	port := FreePort(t)
	// The plaintext port StartRedisServer opens is only for its readiness
	// check; the test is handed the TLS port.
	StartRedisServer(t, path, "--tls-port", strconv.Itoa(port), "--tls-cert-file", filepath.Join(dir, "redis.pem"),
		"--tls-key-file", filepath.Join(dir, "redis-key.pem"), "--tls-ca-cert-file", r.CAFile,
		"--tls-auth-clients", "no", "--aclfile", acl)
	r.Addr = "127.0.0.1:" + strconv.Itoa(port)
	WaitForPort(t, r.Addr, 10*time.Second)
	t.Logf("testenv: TLS+ACL Redis %s at %s", r.Kind, r.Addr)
	return r
}

// SecureKafka is a Kafka listener that speaks TLS and requires
// SASL/SCRAM-SHA-512.
type SecureKafka struct {
	Brokers  []string
	CAFile   string
	User     string
	Password string
}

// NewSecureKafka returns the SASL_SSL Kafka listener the environment names
// (RECSYS_TEST_KAFKA_SASL_BROKERS, RECSYS_TEST_KAFKA_CA,
// RECSYS_TEST_KAFKA_SASL_USER, RECSYS_TEST_KAFKA_SASL_PASSWORD: what
// .ci/secure/start.sh exports), or skips the test saying why: no embedded
// broker speaks SASL.
func NewSecureKafka(t testing.TB) *SecureKafka {
	t.Helper()
	brokers := os.Getenv("RECSYS_TEST_KAFKA_SASL_BROKERS")
	if brokers == "" {
		t.Skip("no SASL_SSL Kafka: RECSYS_TEST_KAFKA_SASL_BROKERS is unset (.ci/run and make deps-up set it; the embedded broker has no SASL)")
	}
	k := &SecureKafka{Brokers: strings.Split(brokers, ","), CAFile: os.Getenv("RECSYS_TEST_KAFKA_CA"), User: os.Getenv("RECSYS_TEST_KAFKA_SASL_USER"), Password: os.Getenv("RECSYS_TEST_KAFKA_SASL_PASSWORD")}
	if k.CAFile == "" || k.User == "" || k.Password == "" {
		t.Fatalf("testenv: RECSYS_TEST_KAFKA_SASL_BROKERS needs RECSYS_TEST_KAFKA_CA, RECSYS_TEST_KAFKA_SASL_USER and RECSYS_TEST_KAFKA_SASL_PASSWORD")
	}
	t.Logf("testenv: SASL_SSL Kafka at %v", k.Brokers)
	return k
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
