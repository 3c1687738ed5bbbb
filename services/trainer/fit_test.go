package trainer

import (
	"os"
	"testing"
	"time"
)

// TestBeatsPopularityOnTheWorld trains on a generated world with a fixed
// seed and requires AUC ≥ 0.70 and NDCG@10 ≥ 1.25× the popularity baseline
// on the time-based hold-out.
func TestBeatsPopularityOnTheWorld(t *testing.T) {
	w := NewWorld(42, 1000, 400)
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	ins := w.Interactions(12000, 10, start, 48*time.Hour, 7)
	meta := DefaultMetadata("ctr", "test")
	ex := Examples(meta, w.Catalog(), ins)
	res, err := Fit(meta, ex, DefaultFit(), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Table(os.Stdout)
	if res.Scores.AUC < 0.70 {
		t.Errorf("AUC %.4f, want ≥ 0.70", res.Scores.AUC)
	}
	if res.Scores.NDCG10 < 1.25*res.Popularity.NDCG10 {
		t.Errorf("NDCG@10 %.4f vs popularity %.4f: want ≥ 1.25×", res.Scores.NDCG10, res.Popularity.NDCG10)
	}
	for _, k := range []string{"auc", "ndcg_at_10", "recall_at_10", "popularity_auc", "popularity_ndcg_at_10", "popularity_recall_at_10"} {
		if _, ok := meta.Metrics[k]; !ok {
			t.Errorf("metadata metrics lack %s", k)
		}
	}
}
