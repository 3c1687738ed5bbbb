package testenv

import (
	"testing"

	"github.com/recsys/recsys/libs/embedded"
)

// NewEmbeddedRedis returns the embedded Redis-compatible server that make
// run starts, whatever the environment offers, stopped at the end of the
// test: for tests of what users meet with the embedded defaults.
func NewEmbeddedRedis(t testing.TB) *Redis {
	t.Helper()
	m, err := embedded.StartRedis("")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(m.Close)
	return &Redis{Addr: m.Addr(), Kind: Embedded, Mini: m, Prefix: "t-" + suffix(t) + ":"}
}
