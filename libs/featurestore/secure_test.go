package featurestore

import (
	"context"
	"flag"
	"strings"
	"testing"
	"time"

	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/testenv"
)

// TestSecureRedis talks to a Redis that speaks TLS only and lets in only
// its ACL user: the flags every binary has (Config) get a real write and
// read through, and a client without credentials, with a wrong password,
// or without TLS is refused.
func TestSecureRedis(t *testing.T) {
	env := testenv.NewSecureRedis(t)
	// A namespace of its own: a shared server's other keys are never touched.
	ns := "t-secure-" + randomSuffix(t) + ":"
	parse := func(t *testing.T, args ...string) Config {
		t.Helper()
		var c Config
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		c.RegisterFlags(fs)
		if err := fs.Parse(append([]string{"-redis=" + env.Addr, "-redis-timeout=5s"}, args...)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("credentials and TLS", func(t *testing.T) {
		s, closeStore, err := parse(t, "-redis-tls", "-redis-ca="+env.CAFile, "-redis-user="+env.User, "-redis-password="+env.Password).Open(ns)
		if err != nil {
			t.Fatal(err)
		}
		defer closeStore()
		if err := s.Ping(ctx); err != nil {
			t.Fatalf("Ping with credentials over TLS: %v", err)
		}
		if err := s.UpsertUsers(ctx, []*userfeaturesv1.UserProfile{{UserId: "u1", Age: 42}}); err != nil {
			t.Fatalf("UpsertUsers over TLS: %v", err)
		}
		got, err := s.Users(ctx, []string{"u1"}, []string{"age"})
		if err != nil {
			t.Fatalf("Users over TLS: %v", err)
		}
		if v := got[0].GetFeatures()["age"].GetNumber(); v != 42 {
			t.Errorf("Users(u1) age = %v, want 42", v)
		}
	})

	for _, tc := range []struct {
		name    string
		args    []string
		wantErr string // a part of the refusal
	}{
		{"no credentials", []string{"-redis-tls", "-redis-ca=" + env.CAFile}, "NOAUTH"},
		{"wrong password", []string{"-redis-tls", "-redis-ca=" + env.CAFile, "-redis-user=" + env.User, "-redis-password=not-" + env.Password}, "WRONGPASS"},
		{"no TLS", []string{"-redis-user=" + env.User, "-redis-password=" + env.Password}, ""},
		{"unknown CA", []string{"-redis-tls", "-redis-user=" + env.User, "-redis-password=" + env.Password}, "certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb, closeRedis, err := Dial(env.Addr, mustOptions(t, parse(t, tc.args...))...)
			if err != nil {
				t.Fatal(err)
			}
			defer closeRedis()
			err = rdb.Set(ctx, ns+"probe", "x", time.Minute).Err()
			if err == nil {
				t.Fatalf("SET with %v succeeded; want it refused", tc.args)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("SET with %v: %v; want an error containing %q", tc.args, err, tc.wantErr)
			}
		})
	}
}

func mustOptions(t *testing.T, c Config) []DialOption {
	t.Helper()
	opts, err := c.Options()
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

func randomSuffix(t *testing.T) string {
	return strings.ReplaceAll(t.Name(), "/", "-") + "-" + time.Now().Format("150405.000000")
}
