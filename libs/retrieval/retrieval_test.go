package retrieval

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// randomIndex is an index of n items with k random neighbours each and
// dim-sized vectors, the same for the same seed.
func randomIndex(n, k, dim int, seed uint64) *Index {
	rng := rand.New(rand.NewPCG(seed, 1))
	x := &Index{Items: make([]string, n), Neighbors: make([][]Neighbor, n), Liked: make([][]Neighbor, n), Dim: dim, Vectors: make([]float32, n*dim),
		Popularity: make([]float32, n), Trend: make([]float32, n), LikedRate: make([]float32, n)}
	for i := range n {
		x.Items[i] = fmt.Sprintf("item-%d", i)
		for range k {
			j := int32(rng.IntN(n))
			if int(j) != i {
				x.Neighbors[i] = append(x.Neighbors[i], Neighbor{Item: j, Weight: rng.Float32()})
			}
		}
		slices.SortFunc(x.Neighbors[i], func(a, b Neighbor) int { return cmp.Compare(b.Weight, a.Weight) })
		for range k / 2 {
			if j := int32(rng.IntN(n)); int(j) != i {
				x.Liked[i] = append(x.Liked[i], Neighbor{Item: j, Weight: rng.Float32()})
			}
		}
		x.Popularity[i], x.LikedRate[i] = rng.Float32()*5, rng.Float32()
		x.Trend[i] = rng.Float32() * 3
	}
	for i := range x.Vectors {
		x.Vectors[i] = float32(rng.NormFloat64())
	}
	return x
}

func TestFileRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		x    *Index
	}{
		{"everything", randomIndex(50, 5, 4, 1)},
		{"neighbours only", &Index{Items: []string{"a", "b"}, Neighbors: [][]Neighbor{{{1, 0.5}}, nil}}},
		{"no artifacts but ids", &Index{Items: []string{"a"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			if err := tc.x.Write(path); err != nil {
				t.Fatal(err)
			}
			got, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			opt := cmpopts.IgnoreUnexported(Index{})
			if d := gocmp.Diff(tc.x, got, opt, cmpopts.EquateEmpty()); d != "" {
				t.Errorf("Read(Write(x)) differs (-want +got):\n%s", d)
			}
		})
	}
}

func TestReadRejectsCorruptFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	bad := &Index{Items: []string{"a"}, Neighbors: [][]Neighbor{{{Item: 7, Weight: 1}}}}
	if err := bad.Write(path); err == nil {
		t.Fatal("Write of a neighbour outside the catalogue succeeded")
	}
	good := randomIndex(20, 3, 4, 2)
	if err := good.Write(path); err != nil {
		t.Fatal(err)
	}
	b := readBytes(t, path)
	for _, cut := range []int{3, len(magic) + 2, len(b) / 2, len(b) - 1} {
		writeBytes(t, path, b[:cut])
		if _, err := Read(path); err == nil {
			t.Errorf("Read of the first %d of %d bytes succeeded", cut, len(b))
		}
	}
}

// TestRetrieveMatchesBruteForce checks each source's picks against a
// full sort of ScoreAll's signals, and the attribution and exclusions.
func TestRetrieveMatchesBruteForce(t *testing.T) {
	x := randomIndex(300, 20, 8, 3)
	u := User{History: []string{"item-5", "item-17", "item-5", "item-200", "unknown", "item-40"}, Clicked: []string{"item-17", "item-40", "item-41"}}
	excluded := map[string]bool{"item-9": true}
	q := Quotas{ItemToItem: 16, Embedding: 10, Trending: 5}
	res := x.Retrieve(u, func(id string) bool { return excluded[id] }, q)
	all := x.ScoreAll(u)

	banned := map[string]bool{"item-5": true, "item-17": true, "item-200": true, "item-9": true, "item-40": true, "item-41": true}
	taken := map[string]bool{}
	best := func(signal string, k int) []string {
		ids := slices.Clone(x.Items)
		pos := map[string]int{}
		for i, id := range x.Items {
			pos[id] = i
		}
		ids = slices.DeleteFunc(ids, func(id string) bool {
			return banned[id] || taken[id] || (signal != SignalEmbedding && all[signal][pos[id]] == 0)
		})
		slices.SortStableFunc(ids, func(a, b string) int { return cmp.Compare(all[signal][pos[b]], all[signal][pos[a]]) })
		ids = ids[:min(k, len(ids))]
		for _, id := range ids {
			taken[id] = true
		}
		return ids
	}
	got := map[Source][]string{}
	for k, id := range res.IDs {
		got[res.Sources[k]] = append(got[res.Sources[k]], id)
	}
	want := best(SignalLiked, q.ItemToItem/2)
	want = append(want, best(SignalItemToItem, q.ItemToItem-len(want))...)
	if d := gocmp.Diff(want, got[ItemToItem]); d != "" {
		t.Errorf("item-to-item picks: half by liked neighbours, the rest by the history's (-want +got):\n%s", d)
	}
	if d := gocmp.Diff(best(SignalEmbedding, q.Embedding), got[Embedding]); d != "" {
		t.Errorf("embedding picks (-want +got):\n%s", d)
	}
	if len(got[Trending]) != q.Trending {
		t.Errorf("trending proposed %d, want %d", len(got[Trending]), q.Trending)
	}
	for k, id := range res.IDs {
		if banned[id] {
			t.Errorf("Retrieve proposed %s, which is consumed, clicked or excluded", id)
		}
		i, _ := x.Lookup(id)
		for _, name := range Signals {
			if raw, ok := strings.CutSuffix(name, RelativeSuffix); ok {
				top := float32(0)
				for _, v := range res.Signals[raw] {
					top = max(top, float32(math.Abs(float64(v))))
				}
				if want := res.Signals[raw][k] / top; top > 0 && math.Abs(float64(res.Signals[name][k]-want)) > 1e-6 {
					t.Errorf("signal %s of %s = %v, want %v (relative to the candidates' largest)", name, id, res.Signals[name][k], want)
				}
				continue
			}
			if res.Signals[name][k] != all[name][i] {
				t.Errorf("signal %s of %s = %v, want %v (ScoreAll)", name, id, res.Signals[name][k], all[name][i])
			}
		}
	}
	// The scratch memory is clean for the next request.
	again := x.Retrieve(u, func(id string) bool { return excluded[id] }, q)
	if d := gocmp.Diff(res, again); d != "" {
		t.Errorf("a second Retrieve differs (-first +second):\n%s", d)
	}
}

func TestRetrieveColdStartAndNoArtifacts(t *testing.T) {
	x := randomIndex(100, 5, 4, 4)
	res := x.Retrieve(User{}, nil, DefaultQuotas())
	if len(res.IDs) != DefaultQuotas().Trending {
		t.Fatalf("cold start proposed %d, want %d trending items", len(res.IDs), DefaultQuotas().Trending)
	}
	for k := range res.IDs {
		if res.Sources[k] != Trending {
			t.Errorf("cold start candidate %s from %v, want trending", res.IDs[k], res.Sources[k])
		}
		if k > 0 && res.Signals[SignalTrend][k] > res.Signals[SignalTrend][k-1] {
			t.Errorf("trending not in trend order at %d", k)
		}
	}
	bare := &Index{Items: []string{"a", "b", "c"}}
	res = bare.Retrieve(User{History: []string{"a"}}, nil, DefaultQuotas())
	if d := gocmp.Diff([]string{"b", "c"}, res.IDs); d != "" {
		t.Errorf("an index with ids only proposes (-want +got):\n%s", d)
	}
}

// BenchmarkRetrieve100k is retrieval over a 100k-item catalogue (32-dim
// vectors, 50 neighbours an item) for users with 100 history items (50 clicked); it
// reports p50 and p99 (the budget: p99 ≤ 2 ms). "long-tail" gives item
// vectors norms that fall with popularity rank, as PureSVD's do on real
// data; "equal-norms" is the embedding search's worst case, where no
// item can be skipped.
func BenchmarkRetrieve100k(b *testing.B) {
	for _, tc := range []struct {
		name     string
		longTail bool
	}{{"long-tail", true}, {"equal-norms", false}} {
		b.Run(tc.name, func(b *testing.B) {
			x := randomIndex(100_000, 50, 32, 5)
			if tc.longTail {
				for i := range x.Items {
					scale := float32(1 / math.Sqrt(float64(i+1)))
					for k := range x.Dim {
						x.Vectors[i*x.Dim+k] *= scale
					}
				}
			}
			rng := rand.New(rand.NewPCG(9, 9))
			users := make([]User, 64)
			for h := range users {
				for k := range 100 {
					id := x.Items[rng.IntN(len(x.Items))]
					users[h].History = append(users[h].History, id)
					if k%2 == 0 {
						users[h].Clicked = append(users[h].Clicked, id)
					}
				}
			}
			x.Retrieve(users[0], nil, DefaultQuotas())
			lat := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				x.Retrieve(users[i%len(users)], nil, DefaultQuotas())
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

func readBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
