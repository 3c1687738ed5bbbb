package trainer

import (
	"fmt"
	"io"
	"math"

	"github.com/recsys/recsys/libs/modelrt"
)

// FitOptions size the model and its training.
type FitOptions struct {
	Dim, H1, H2 int
	Train       TrainOptions
	Holdout     float64 // latest fraction of examples held out
}

// DefaultFit is what the trainer uses unless told otherwise.
func DefaultFit() FitOptions {
	return FitOptions{Dim: 8, H1: 32, H2: 16, Holdout: 0.2, Train: TrainOptions{Epochs: 3, BatchSize: 256, LR: 0.005, Seed: 1}}
}

// LogFit is the evaluation of a ranker trained on logged rows, on the
// latest logged impressions.
type LogFit struct {
	Meta                *modelrt.Metadata
	Scores, Popularity  Metrics // on the latest rows: a ranker trained on the earlier ones, and the baseline
	TrainRows, TestRows int
}

// Fit trains a ranker on the earlier part of logged examples (in time
// order), as trainRanker does, each served list a group: clicked items
// are trained to score above the items shown beside them. It evaluates it
// on the latest part over the impressions that were shown — a measure of
// a ranker among what was served, not of the whole pipeline, so its
// metrics are named logged_* in metadata.json. Progress goes to out.
func Fit(meta *modelrt.Metadata, ex []Example, o FitOptions, out io.Writer) (*LogFit, error) {
	train, test := split(ex, o.Holdout)
	if len(train) == 0 || len(test) == 0 {
		return nil, fmt.Errorf("%d examples are too few to train and hold out %.0f%%", len(ex), o.Holdout*100)
	}
	res := &LogFit{Meta: meta, TrainRows: len(train), TestRows: len(test)}
	fmt.Fprintf(out, "ranker on the logged rows: %d to train, the latest %d to evaluate\n", len(train), len(test))
	rows, labels, groups := loggedRows(train)
	m, _ := trainRanker(meta, rows, labels, groups, o, out)
	a := m.newActivations()
	res.Scores = Evaluate(test, func(e Example) float64 { return float64(m.forward(e.Row, a)) })
	res.Popularity = Evaluate(test, Popularity(train))
	meta.Metrics = mergeMetrics(meta.Metrics, map[string]float64{
		"logged_auc": round(res.Scores.AUC), "logged_ndcg_at_10": round(res.Scores.NDCG10), "logged_recall_at_10": round(res.Scores.Recall10),
		"logged_popularity_auc": round(res.Popularity.AUC), "logged_popularity_ndcg_at_10": round(res.Popularity.NDCG10),
	})
	return res, nil
}

// loggedRows lays examples out for trainRanker: a copy of their rows,
// their labels, and a group per served list (a run of one request id).
func loggedRows(ex []Example) (rows, labels []float32, groups []int) {
	for i, e := range ex {
		if i == 0 || e.RequestID != ex[i-1].RequestID {
			groups = append(groups, i)
		}
		rows = append(rows, e.Row...)
		labels = append(labels, e.Label)
	}
	return rows, labels, append(groups, len(ex))
}

func round(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// Table prints the evaluation.
func (r *LogFit) Table(out io.Writer) {
	fmt.Fprintf(out, "ranker on the latest %d logged impressions (trained on %d):\n", r.TestRows, r.TrainRows)
	fmt.Fprintf(out, "  %-12s %8s %8s %10s\n", "", "AUC", "NDCG@10", "Recall@10")
	fmt.Fprintf(out, "  %-12s %8.4f %8.4f %10.4f\n", "model", r.Scores.AUC, r.Scores.NDCG10, r.Scores.Recall10)
	fmt.Fprintf(out, "  %-12s %8.4f %8.4f %10.4f\n", "popularity", r.Popularity.AUC, r.Popularity.NDCG10, r.Popularity.Recall10)
}
