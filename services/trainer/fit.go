package trainer

import (
	"fmt"
	"io"
	"math"

	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/progress"
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

// LogFit is a ranker trained on logged rows, with its evaluation on the
// latest logged impressions.
type LogFit struct {
	Model               *Model
	Meta                *modelrt.Metadata
	Scores, Popularity  Metrics // the model's and the baseline's
	TrainRows, TestRows int
}

// Fit trains the ranker on the earlier part of logged examples (in time
// order) and evaluates it and the popularity baseline on the latest part
// over the impressions that were shown — a measure of the ranker among
// what was served, not of the whole pipeline, so its metrics are named
// logged_* in metadata.json. Progress goes to out (nil: none).
func Fit(meta *modelrt.Metadata, ex []Example, o FitOptions, out io.Writer) (*LogFit, error) {
	train, test := split(ex, o.Holdout)
	if len(train) == 0 || len(test) == 0 {
		return nil, fmt.Errorf("%d examples are too few to train and hold out %.0f%%", len(ex), o.Holdout*100)
	}
	width := len(meta.Features)
	rows := make([]float32, 0, len(train)*width)
	labels := make([]float32, len(train))
	for i, e := range train {
		rows = append(rows, e.Row...)
		labels[i] = e.Label
	}
	m := NewModel(meta, o.Dim, o.H1, o.H2, o.Train.Seed)
	opts := o.Train
	if out != nil {
		newBar := func(epoch int) *progress.Bar {
			return progress.New(out, fmt.Sprintf("epoch %d/%d", epoch+1, opts.Epochs), "rows", int64(len(train)))
		}
		bar := newBar(0)
		opts.Progress = func(n int) { bar.Add(int64(n)) }
		opts.EpochDone = func(epoch int, loss float64) {
			bar.Done()
			fmt.Fprintf(out, "epoch %d/%d: training loss %.4f\n", epoch+1, opts.Epochs, loss)
			if epoch+1 < opts.Epochs {
				bar = newBar(epoch + 1)
			}
		}
	}
	m.Train(rows, labels, opts)
	res := &LogFit{Model: m, Meta: meta, TrainRows: len(train), TestRows: len(test)}
	a := m.newActivations()
	res.Scores = Evaluate(test, func(e Example) float64 { return float64(m.forward(e.Row, a)) })
	res.Popularity = Evaluate(test, Popularity(train))
	meta.Metrics = mergeMetrics(meta.Metrics, map[string]float64{
		"logged_auc": round(res.Scores.AUC), "logged_ndcg_at_10": round(res.Scores.NDCG10), "logged_recall_at_10": round(res.Scores.Recall10),
		"logged_popularity_auc": round(res.Popularity.AUC), "logged_popularity_ndcg_at_10": round(res.Popularity.NDCG10),
	})
	return res, nil
}

func round(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// Table prints the evaluation.
func (r *LogFit) Table(out io.Writer) {
	fmt.Fprintf(out, "ranker on the latest %d logged impressions (trained on %d):\n", r.TestRows, r.TrainRows)
	fmt.Fprintf(out, "  %-12s %8s %8s %10s\n", "", "AUC", "NDCG@10", "Recall@10")
	fmt.Fprintf(out, "  %-12s %8.4f %8.4f %10.4f\n", "model", r.Scores.AUC, r.Scores.NDCG10, r.Scores.Recall10)
	fmt.Fprintf(out, "  %-12s %8.4f %8.4f %10.4f\n", "popularity", r.Popularity.AUC, r.Popularity.NDCG10, r.Popularity.Recall10)
}
