package ingest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/testenv"
)

// writeML100K writes u.user, u.item and a u.data of n ratings in the
// MovieLens 100k layout, and returns the folder and the number of ratings
// at or above 4.
func writeML100K(t *testing.T, users, items, n int) (string, int) {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 7))
	var b strings.Builder
	for u := 1; u <= users; u++ {
		fmt.Fprintf(&b, "%d|%d|%s|%s|%05d\n", u, 18+rng.IntN(50), []string{"M", "F"}[rng.IntN(2)], "engineer", rng.IntN(99999))
	}
	os.WriteFile(filepath.Join(dir, "u.user"), []byte(b.String()), 0o644)
	b.Reset()
	for i := 1; i <= items; i++ {
		flags := make([]string, 19)
		for g := range flags {
			flags[g] = "0"
		}
		flags[1+rng.IntN(18)] = "1"
		fmt.Fprintf(&b, "%d|Movie %d (1995)|01-Jan-1995||http://example.com/%d|%s\n", i, i, i, strings.Join(flags, "|"))
	}
	os.WriteFile(filepath.Join(dir, "u.item"), []byte(b.String()), 0o644)
	b.Reset()
	clicks := 0
	for range n {
		r := 1 + rng.IntN(5)
		if r >= 4 {
			clicks++
		}
		fmt.Fprintf(&b, "%d\t%d\t%d\t%d\n", 1+rng.IntN(users), 1+rng.IntN(items), r, 874724710+rng.IntN(20000000))
	}
	os.WriteFile(filepath.Join(dir, "u.data"), []byte(b.String()), 0o644)
	return dir, clicks
}

func TestIngestMovieLens100K(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 100k ratings")
	}
	env := testenv.NewRedis(t)
	dir, clicks := writeML100K(t, 943, 1682, 100_000)
	cfg := Config{Redis: featurestore.Config{Addr: env.Addr}, Namespace: env.Prefix, Users: filepath.Join(dir, "u.user"), Items: filepath.Join(dir, "u.item"),
		Ratings: filepath.Join(dir, "u.data"), Format: "auto", OnError: "abort", Batch: 500, ClickThreshold: 4, ShiftToNow: true}
	var out bytes.Buffer
	sum, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	want := Summary{Users: 943, Items: 1682, Ratings: 100_000, Impressions: 100_000, Clicks: clicks}
	if sum != want {
		t.Errorf("Run = %+v, want %+v", sum, want)
	}
	if !strings.Contains(out.String(), "loaded 943 users, 1682 items, 100000 ratings") {
		t.Errorf("summary line missing from output:\n%s", out.String())
	}

	// The features reflect the load: with times shifted to now, some user
	// has recent clicks and counts.
	rdb := redis.NewClient(&redis.Options{Addr: env.Addr})
	defer rdb.Close()
	store, _ := featurestore.New(rdb, env.Prefix)
	us, err := store.Users(context.Background(), []string{"1", "2", "3"}, []string{"age", "clicks_7d", "recent_clicks"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if u.GetMissing() || u.GetFeatures()["age"].GetNumber() < 18 {
			t.Errorf("user %s = %v, want a profile", u.GetEntityId(), u)
		}
	}

	// Running it again changes nothing.
	out.Reset()
	again, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatal(err)
	}
	if again.Duplicates != 100_000+clicks {
		t.Errorf("re-run: %d duplicates, want %d (every event)", again.Duplicates, 100_000+clicks)
	}
}

// TestIngestEmbeddedDefaults loads MovieLens ratings into the embedded
// store that make run starts, with every flag at its default but the
// files: the load a new user tries first must not time out. (Each batch
// of the default size is one pipeline of ~800 script calls, which the
// embedded server took over the old fixed 1 s read timeout to answer; the
// size of the file only multiplies the batches. A 100k-rating file takes
// about 2 minutes here: the embedded server starts a Lua state per
// script call.)
func TestIngestEmbeddedDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("loads 10k ratings into the embedded store")
	}
	const ratings = 10_000
	env := testenv.NewEmbeddedRedis(t)
	dir, _ := writeML100K(t, 943, 1682, ratings)
	var cfg Config
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse([]string{"-redis", env.Addr, "-users", filepath.Join(dir, "u.user"), "-items", filepath.Join(dir, "u.item"), "-ratings", filepath.Join(dir, "u.data")}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var out bytes.Buffer
	sum, err := Run(context.Background(), cfg, &out)
	if err != nil {
		t.Fatalf("ingest with default flags into the embedded store: %v\n%s", err, out.String())
	}
	if sum.Ratings != ratings {
		t.Errorf("loaded %d ratings, want %d", sum.Ratings, ratings)
	}
	t.Logf("%d ratings into the embedded store in %s", ratings, time.Since(start).Round(time.Millisecond))
}

func TestIngestBadRows(t *testing.T) {
	env := testenv.NewRedis(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "u.data")
	os.WriteFile(data, []byte("1\t10\t5\t881250949\n2\t20\tfive\t881250949\n3\t30\t4\t881250949\n"), 0o644)
	base := Config{Redis: featurestore.Config{Addr: env.Addr}, Namespace: env.Prefix, Ratings: data, Format: "auto", Batch: 10, ClickThreshold: 4}

	var out bytes.Buffer
	abort := base
	abort.OnError = "abort"
	_, err := Run(context.Background(), abort, &out)
	if err == nil || !strings.Contains(err.Error(), "u.data:2:") || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("abort: err = %v, want one naming u.data:2 and saying nothing was written", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: env.Addr})
	defer rdb.Close()
	if keys, _ := rdb.Keys(context.Background(), env.Prefix+"*").Result(); len(keys) != 0 {
		t.Errorf("abort wrote %d keys, want none", len(keys))
	}

	out.Reset()
	skip := base
	skip.OnError = "skip"
	sum, err := Run(context.Background(), skip, &out)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Ratings != 2 || sum.Skipped != 1 || !strings.Contains(out.String(), "u.data:2:") {
		t.Errorf("skip: %+v, output:\n%s\nwant 2 ratings, 1 skipped, line 2 reported", sum, out.String())
	}
}

// TestIngestHistory loads a few ratings and expects every rated item in its
// user's history, newest first, those rated below the click threshold too.
func TestIngestHistory(t *testing.T) {
	env := testenv.NewRedis(t)
	data := filepath.Join(t.TempDir(), "u.data")
	// user, item, rating, time
	os.WriteFile(data, []byte("1\t10\t5\t881250949\n1\t20\t1\t881250950\n1\t30\t3\t881250948\n2\t10\t4\t881250949\n3\t40\t2\t881250949\n"), 0o644)
	cfg := Config{Redis: featurestore.Config{Addr: env.Addr}, Namespace: env.Prefix, Ratings: data, Format: "auto", OnError: "abort", Batch: 2, ClickThreshold: 4}
	var out bytes.Buffer
	if _, err := Run(context.Background(), cfg, &out); err != nil {
		t.Fatalf("Run: %v\n%s", err, out.String())
	}
	rdb := redis.NewClient(&redis.Options{Addr: env.Addr})
	defer rdb.Close()
	store, err := featurestore.New(rdb, env.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user string
		want []string
	}{
		{"1", []string{"20", "10", "30"}},
		{"2", []string{"10"}},
		{"3", []string{"40"}}, // below the threshold: no click, still consumed
	} {
		us, err := store.Users(context.Background(), []string{tc.user}, []string{"history"})
		if err != nil {
			t.Fatal(err)
		}
		if got := us[0].GetFeatures()["history"].GetList().GetValues(); !slices.Equal(got, tc.want) {
			t.Errorf("user %s history = %v, want %v", tc.user, got, tc.want)
		}
	}
}
