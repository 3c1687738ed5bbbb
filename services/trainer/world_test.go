package trainer

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestServedPipelineWinsOnTheWorld evaluates the served pipeline on three
// generated worlds (per-user temporal split, whole catalogue) and requires
// NDCG@10 ≥ 1.1× the better of item-kNN and EASE, ≥ 2× popularity, and
// above the best retrieval signal used alone (the ranker must beat its
// retrieval).
func TestServedPipelineWinsOnTheWorld(t *testing.T) {
	if testing.Short() {
		t.Skip("three worlds take a while; -short skips them")
	}
	for _, seed := range []uint64{1, 2, 3} {
		w := NewWorld(seed, 1000, 400)
		d := w.Data(w.Consumption(30000, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Cycle, seed))
		o := DefaultPipeline()
		o.Dim, o.Seed = 16, seed
		var out bytes.Buffer
		rep, err := EvaluatePipeline(d, RankerMetadata("ctr", "world"), o, &out)
		if err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, out.String())
		}
		rep.Table(&out)
		t.Logf("seed %d:\n%s", seed, out.String())
		served := rep.Served.NDCG10
		best := max(rep.Baseline("itemknn").NDCG10, rep.Baseline("ease").NDCG10)
		if served < 1.1*best {
			t.Errorf("seed %d: served NDCG@10 %.4f, want ≥ 1.1 × the best of item-kNN and EASE (%.4f)", seed, served, best)
		}
		if pop := rep.Baseline("popularity").NDCG10; served < 2*pop {
			t.Errorf("seed %d: served NDCG@10 %.4f, want ≥ 2 × popularity (%.4f)", seed, served, pop)
		}
		if sig := rep.BestSignal(); served <= sig.Metrics.NDCG10 {
			t.Errorf("seed %d: served NDCG@10 %.4f, want above the best single signal %s (%.4f)", seed, served, sig.Name, sig.Metrics.NDCG10)
		}
	}
}

// TestEASEBaselineOverMostUsed: over -ease-max-items the EASE baseline
// runs on the most-used items, as the pipeline's EASE does, and says so;
// the strongest simple baseline is never left out of the table.
func TestEASEBaselineOverMostUsed(t *testing.T) {
	w := NewWorld(4, 200, 120)
	d := w.Data(w.Consumption(4000, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Cycle, 4))
	o := DefaultPipeline()
	o.Dim, o.SVDIters, o.EASEMaxItems = 8, 2, 60
	var out bytes.Buffer
	rep, err := EvaluatePipeline(d, RankerMetadata("ctr", "world"), o, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, b := range rep.Baselines {
		if b.Name == "ease" {
			if b.Metrics.NDCG10 <= 0 || !strings.Contains(b.Detail, "the 60 most-used items") {
				t.Errorf("ease baseline %+v: want a measured one saying it ran over the 60 most-used items", b)
			}
			return
		}
	}
	t.Errorf("no EASE baseline over %d items with -ease-max-items 60:\n%s", len(d.Items), out.String())
}

// TestEvalUsersSample: -eval-users measures the table on that many users
// of those with test events, each over the whole catalogue, and the same
// ones for the same seed.
func TestEvalUsersSample(t *testing.T) {
	w := NewWorld(5, 300, 100)
	d := w.Data(w.Consumption(6000, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Cycle, 5))
	_, test := d.Split(0.2)
	a, b := sampleUsers(test, 50, 7), sampleUsers(test, 50, 7)
	n := 0
	for u := range a.ByUser {
		if len(a.ByUser[u]) > 0 {
			n++
			if !slices.Equal(a.ByUser[u], test.ByUser[u]) {
				t.Errorf("user %d: sampled events differ from the test split's", u)
			}
		}
		if len(a.ByUser[u]) != len(b.ByUser[u]) {
			t.Fatalf("user %d: two samples with one seed differ", u)
		}
	}
	if n != 50 || len(a.Items) != len(d.Items) {
		t.Errorf("sample has %d users with events over %d items; want 50 over the whole catalogue (%d)", n, len(a.Items), len(d.Items))
	}
	if sampleUsers(test, 0, 7) != test || sampleUsers(test, 100000, 7) != test {
		t.Error("-eval-users 0 or more than the users changed the test split")
	}
	o := DefaultPipeline()
	o.Dim, o.SVDIters, o.EvalUsers = 8, 2, 50
	var out bytes.Buffer
	rep, err := EvaluatePipeline(d, RankerMetadata("ctr", "world"), o, &out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if rep.Served.Users > 50 || rep.Served.Users == 0 || !strings.Contains(out.String(), "seeded sample of 50 users") {
		t.Errorf("served measured on %d users, want 1..50 and the sample said:\n%s", rep.Served.Users, out.String())
	}
}
