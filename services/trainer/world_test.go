package trainer

import (
	"bytes"
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
