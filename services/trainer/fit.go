package trainer

import (
	"fmt"
	"io"
	"math"
	"time"

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

// Result is a trained model with its evaluation.
type Result struct {
	Model               *Model
	Meta                *modelrt.Metadata
	Scores, Popularity  Metrics // the model's and the baseline's
	TrainRows, TestRows int
}

// Fit trains on the earlier part of the examples (in time order), evaluates
// the model and the popularity baseline on the latest part, and fills the
// metadata's metrics and training span. Progress goes to out (nil: none).
func Fit(meta *modelrt.Metadata, ex []Example, o FitOptions, out io.Writer) (*Result, error) {
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
	res := &Result{Model: m, Meta: meta, TrainRows: len(train), TestRows: len(test)}
	a := m.newActivations()
	res.Scores = Evaluate(test, func(e Example) float64 { return float64(m.forward(e.Row, a)) })
	res.Popularity = Evaluate(test, Popularity(train))
	meta.Metrics = map[string]float64{
		"auc": round(res.Scores.AUC), "ndcg_at_10": round(res.Scores.NDCG10), "recall_at_10": round(res.Scores.Recall10),
		"popularity_auc": round(res.Popularity.AUC), "popularity_ndcg_at_10": round(res.Popularity.NDCG10), "popularity_recall_at_10": round(res.Popularity.Recall10),
	}
	meta.Training = &modelrt.TrainingSpan{From: train[0].Time, To: train[len(train)-1].Time, Rows: int64(len(train))}
	meta.CreatedAt = time.Now().UTC()
	return res, nil
}

func round(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// Table prints the evaluation.
func (r *Result) Table(out io.Writer) {
	fmt.Fprintf(out, "hold-out of %d rows (trained on %d):\n", r.TestRows, r.TrainRows)
	fmt.Fprintf(out, "  %-12s %8s %8s %10s\n", "", "AUC", "NDCG@10", "Recall@10")
	fmt.Fprintf(out, "  %-12s %8.4f %8.4f %10.4f\n", "model", r.Scores.AUC, r.Scores.NDCG10, r.Scores.Recall10)
	fmt.Fprintf(out, "  %-12s %8.4f %8.4f %10.4f\n", "popularity", r.Popularity.AUC, r.Popularity.NDCG10, r.Popularity.Recall10)
}
