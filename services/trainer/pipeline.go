package trainer

import (
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/recsys/recsys/libs/evaluation"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/retrieval"
)

// PipelineOptions size what the trainer fits for the served pipeline:
// the retrieval index (neighbours, vectors, popularity) and the ranker
// over its candidates.
type PipelineOptions struct {
	Neighbors    int     // neighbours kept per item
	Lambda       float64 // EASE's L2 regularisation
	EASEMaxItems int     // EASE runs over at most this many most-used items (its cost grows with the cube)
	Dim          int     // item vector size
	SVDIters     int     // subspace iterations of PureSVD
	Holdout      float64 // each user's latest fraction held out (evaluation and the ranker's labels)
	Quotas       retrieval.Quotas
	Fit          FitOptions
	Seed         uint64
}

// DefaultPipeline is what the trainer uses unless told otherwise.
func DefaultPipeline() PipelineOptions {
	fit := DefaultFit()
	fit.Train.Epochs = 4
	return PipelineOptions{Neighbors: 100, Lambda: 500, EASEMaxItems: 3000, Dim: 32, SVDIters: 8, Holdout: 0.2,
		Quotas: retrieval.DefaultQuotas(), Fit: fit, Seed: 1}
}

// RankerMetadata is the feature list of the default ranker: the retrieval
// signals of each candidate (docs/architecture.md, "Retrieval").
func RankerMetadata(name, version string) *modelrt.Metadata {
	m := &modelrt.Metadata{Name: name, Version: version, Input: "features", Output: "score", Hashing: modelrt.Hashing{Salt: "recsys", Buckets: 1}}
	for _, s := range retrieval.Signals {
		m.Features = append(m.Features, modelrt.Feature{Name: s, Source: "retrieval." + s})
	}
	return m
}

// Pipeline is a fitted served pipeline: what a model version publishes.
type Pipeline struct {
	Index     *retrieval.Index
	Model     *Model
	Meta      *modelrt.Metadata
	Neighbors string  // "ease" or "itemknn", whichever ranked the inner hold-out better
	Choice    Choice  // the inner hold-out's numbers behind that choice
	Quotas    retrieval.Quotas
	Loss      float64 // the ranker's last training loss
}

// Choice records the item-to-item candidates compared on the inner hold-out.
type Choice struct{ EASE, ItemKNN evaluation.Metrics }

// FitPipeline fits the served pipeline on d. The ranker needs labels the
// retrieval stage did not see, so d is split once more per user: the
// index is fitted on the earlier part, its candidates for each user are
// labelled by the user's later part, and the ranker learns from exactly
// those rows (negatives drawn the way serving draws candidates). The
// published index is then fitted again on the whole of d.
func FitPipeline(d *evaluation.Data, meta *modelrt.Metadata, o PipelineOptions, out io.Writer) (*Pipeline, error) {
	fit, val := d.Split(o.Holdout)
	p := &Pipeline{Meta: meta, Quotas: o.Quotas}
	step := func(format string, args ...any) func() {
		start := time.Now()
		fmt.Fprintf(out, "  "+format+"...", args...)
		return func() { fmt.Fprintf(out, " %s\n", time.Since(start).Round(time.Millisecond)) }
	}

	done := step("inner split: EASE and item-kNN neighbours of %d items", len(d.Items))
	ease, err := evaluation.EASE(fit, o.Lambda, o.Neighbors, o.EASEMaxItems)
	if err != nil {
		return nil, err
	}
	knn := evaluation.ItemKNN(fit, o.Neighbors)
	p.Choice = Choice{EASE: evaluation.Evaluate(fit, val, ease.Scorer()), ItemKNN: evaluation.Evaluate(fit, val, knn.Scorer())}
	nbs := ease
	p.Neighbors = "ease"
	if p.Choice.ItemKNN.NDCG10 > p.Choice.EASE.NDCG10 {
		p.Neighbors, nbs = "itemknn", knn
	}
	done()
	fmt.Fprintf(out, "  neighbours on the inner hold-out: EASE NDCG@10 %.4f, item-kNN %.4f: publishing %s\n", p.Choice.EASE.NDCG10, p.Choice.ItemKNN.NDCG10, p.Neighbors)

	done = step("ranker rows from the inner split's candidates")
	inner := buildIndex(fit, nbs, o)
	rows, labels := rankerRows(inner, fit, val, meta, o.Quotas)
	done()
	if len(labels) == 0 {
		return nil, fmt.Errorf("no user has a relevant interaction in the latest %.0f%% of their history: nothing to train the ranker on", o.Holdout*100)
	}
	pos := 0
	for _, l := range labels {
		pos += int(l)
	}
	fmt.Fprintf(out, "  ranker: %d candidate rows, %d relevant\n", len(labels), pos)
	p.Model, p.Loss = trainRanker(meta, rows, labels, o.Fit, out)

	done = step("final index on all %d users", len(d.Users))
	if p.Neighbors == "ease" {
		nbs, err = evaluation.EASE(d, o.Lambda, o.Neighbors, o.EASEMaxItems)
		if err != nil {
			return nil, err
		}
	} else {
		nbs = evaluation.ItemKNN(d, o.Neighbors)
	}
	p.Index = buildIndex(d, nbs, o)
	done()
	return p, nil
}

// buildIndex assembles a retrieval index over d's catalogue.
func buildIndex(d *evaluation.Data, nbs *evaluation.ItemModel, o PipelineOptions) *retrieval.Index {
	x := &retrieval.Index{Items: d.Items, Neighbors: make([][]retrieval.Neighbor, len(d.Items))}
	for j, list := range nbs.Neighbors {
		x.Neighbors[j] = make([]retrieval.Neighbor, len(list))
		for k, nb := range list {
			x.Neighbors[j][k] = retrieval.Neighbor{Item: nb.Item, Weight: nb.Weight}
		}
	}
	if o.Dim > 0 && len(d.Items) > o.Dim {
		x.Dim, x.Vectors = o.Dim, evaluation.PureSVD(d, o.Dim, o.SVDIters, o.Seed)
	}
	x.Popularity, x.Trend = popularity(d)
	return x
}

// popularity is each item's ln(1 + interactions), and ln(1 + interactions
// decayed with a half-life of a tenth of the data's time span, at its end).
func popularity(d *evaluation.Data) (pop, trend []float32) {
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for _, evs := range d.ByUser {
		for _, e := range evs {
			first, last = min(first, e.Time), max(last, e.Time)
		}
	}
	halfLife := max(float64(last-first)/10, 1)
	count, decayed := make([]float64, len(d.Items)), make([]float64, len(d.Items))
	for _, evs := range d.ByUser {
		for _, e := range evs {
			count[e.Item]++
			decayed[e.Item] += math.Exp2(-float64(last-e.Time) / halfLife)
		}
	}
	pop, trend = make([]float32, len(d.Items)), make([]float32, len(d.Items))
	for i := range pop {
		pop[i], trend[i] = float32(math.Log1p(count[i])), float32(math.Log1p(decayed[i]))
	}
	return pop, trend
}

// History is a user's consumed items as the feature store keeps them:
// distinct, newest first, at most HistoryLength.
func History(d *evaluation.Data, events []evaluation.Event) []string {
	out := make([]string, 0, min(len(events), historyLength))
	seen := make(map[int32]bool, len(events))
	for k := len(events) - 1; k >= 0 && len(out) < historyLength; k-- {
		if it := events[k].Item; !seen[it] {
			seen[it] = true
			out = append(out, d.Items[it])
		}
	}
	return out
}

// historyLength is how many consumed items the feature store keeps a user.
const historyLength = 1000

// rankerRows are the candidates retrieval proposes for each user of fit
// that has a relevant event in val, with their feature rows, labelled 1
// when the user's val part has them as relevant.
func rankerRows(x *retrieval.Index, fit, val *evaluation.Data, meta *modelrt.Metadata, q retrieval.Quotas) (rows, labels []float32) {
	var buf []float32
	for u, later := range val.ByUser {
		relevant := map[string]bool{}
		for _, e := range later {
			if e.Relevant {
				relevant[fit.Items[e.Item]] = true
			}
		}
		if len(relevant) == 0 {
			continue
		}
		res := x.Retrieve(History(fit, fit.ByUser[u]), nil, q)
		buf = meta.Rows(fit.Users[u], nil, res.IDs, nil, res.Signals, buf)
		rows = append(rows, buf...)
		for _, id := range res.IDs {
			l := float32(0)
			if relevant[id] {
				l = 1
			}
			labels = append(labels, l)
		}
	}
	return rows, labels
}

// trainRanker fits the MLP on standardised dense inputs and folds the
// standardisation into its first layer, so the exported model takes the
// raw rows serving assembles.
func trainRanker(meta *modelrt.Metadata, rows, labels []float32, o FitOptions, out io.Writer) (*Model, float64) {
	m := NewModel(meta, o.Dim, o.H1, o.H2, o.Train.Seed)
	width := len(meta.Features)
	mean, std := standardize(rows, width, m.Dense)
	opts := o.Train
	if out != nil {
		opts.EpochDone = func(epoch int, loss float64) {
			fmt.Fprintf(out, "  ranker epoch %d/%d: loss %.4f\n", epoch+1, opts.Epochs, loss)
		}
	}
	loss := m.Train(rows, labels, opts)
	m.foldScaling(mean, std)
	return m, loss
}

// standardize rescales the dense columns of rows in place to mean 0 and
// standard deviation 1, and returns what it subtracted and divided by.
func standardize(rows []float32, width int, dense []int) (mean, std []float64) {
	n := len(rows) / width
	mean, std = make([]float64, len(dense)), make([]float64, len(dense))
	for j, c := range dense {
		var s, ss float64
		for r := range n {
			v := float64(rows[r*width+c])
			s += v
			ss += v * v
		}
		mean[j] = s / float64(n)
		std[j] = math.Sqrt(max(ss/float64(n)-mean[j]*mean[j], 0))
		if std[j] < 1e-9 {
			std[j] = 1
		}
		for r := range n {
			rows[r*width+c] = float32((float64(rows[r*width+c]) - mean[j]) / std[j])
		}
	}
	return mean, std
}

// foldScaling makes the first layer take raw dense inputs x where it was
// trained on (x - mean) / std.
func (m *Model) foldScaling(mean, std []float64) {
	in := m.In()
	for i := range m.H1 {
		w := m.W1[i*in : (i+1)*in]
		for j := range m.Dense {
			m.B1[i] -= float32(float64(w[j]) * mean[j] / std[j])
			w[j] = float32(float64(w[j]) / std[j])
		}
	}
}

// Scorer is the served pipeline as a full-catalogue scorer: retrieval
// proposes candidates from the user's history, the ranker scores them,
// and every item retrieval did not propose ranks below them all, exactly
// as Recommend answers.
func (p *Pipeline) Scorer(d *evaluation.Data) evaluation.Scorer {
	a := p.Model.newActivations()
	width := len(p.Meta.Features)
	var buf []float32
	return func(u int, history []evaluation.Event, scores []float32) {
		for i := range scores {
			scores[i] = float32(math.Inf(-1))
		}
		res := p.Index.Retrieve(History(d, history), nil, p.Quotas)
		buf = p.Meta.Rows(d.Users[u], nil, res.IDs, nil, res.Signals, buf)
		for k, id := range res.IDs {
			i, _ := d.ItemIndex[id]
			scores[i] = p.Model.forward(buf[k*width:(k+1)*width], a)
		}
	}
}

// signalScorer ranks the whole catalogue by one retrieval signal alone.
func signalScorer(x *retrieval.Index, d *evaluation.Data, signal string) evaluation.Scorer {
	return func(u int, history []evaluation.Event, scores []float32) {
		copy(scores, x.ScoreAll(History(d, history))[signal])
	}
}

// Report is the evaluation of the served pipeline beside the baselines,
// all on the same per-user temporal split.
type Report struct {
	Served     evaluation.Metrics
	Baselines  []Baseline // popularity, item-kNN, EASE, then each retrieval signal alone
	Users      int
	Items      int
	TrainItems int // interactions in the training part
	TestItems  int
}

// Baseline is one method's metrics.
type Baseline struct {
	Name    string
	Metrics evaluation.Metrics
}

// BestSignal is the best single retrieval signal by NDCG@10.
func (r *Report) BestSignal() Baseline {
	var best Baseline
	for _, b := range r.Baselines {
		if _, ok := strings.CutPrefix(b.Name, "signal:"); ok && b.Metrics.NDCG10 >= best.Metrics.NDCG10 {
			best = b
		}
	}
	return best
}

// Baseline returns a baseline's metrics by name.
func (r *Report) Baseline(name string) evaluation.Metrics {
	for _, b := range r.Baselines {
		if b.Name == name {
			return b.Metrics
		}
	}
	return evaluation.Metrics{}
}

// EvaluatePipeline splits d per user in time, fits the pipeline on the
// earlier part and scores what it would serve against each user's later
// part over the whole catalogue, beside popularity, item-kNN, EASE and
// each retrieval signal alone, fitted on the same earlier part.
func EvaluatePipeline(d *evaluation.Data, meta *modelrt.Metadata, o PipelineOptions, out io.Writer) (*Report, error) {
	train, test := d.Split(o.Holdout)
	r := &Report{Users: len(d.Users), Items: len(d.Items)}
	for u := range train.ByUser {
		r.TrainItems += len(train.ByUser[u])
		r.TestItems += len(test.ByUser[u])
	}
	fmt.Fprintf(out, "evaluation: %d users, %d items; each user's latest %.0f%% held out (%d train, %d test interactions)\n",
		r.Users, r.Items, o.Holdout*100, r.TrainItems, r.TestItems)
	p, err := FitPipeline(train, meta, o, out)
	if err != nil {
		return nil, err
	}
	r.Served = evaluation.Evaluate(train, test, p.Scorer(train))
	r.Baselines = append(r.Baselines, Baseline{"popularity", evaluation.Evaluate(train, test, evaluation.Popularity(train))})
	r.Baselines = append(r.Baselines, Baseline{"itemknn", evaluation.Evaluate(train, test, evaluation.ItemKNN(train, 100).Scorer())})
	if len(d.Items) <= o.EASEMaxItems {
		ease, err := evaluation.EASE(train, o.Lambda, 0, 0)
		if err != nil {
			return nil, err
		}
		r.Baselines = append(r.Baselines, Baseline{"ease", evaluation.Evaluate(train, test, ease.Scorer())})
	} else {
		fmt.Fprintf(out, "  EASE baseline skipped: %d items is more than -ease-max-items %d (its cost grows with the cube)\n", len(d.Items), o.EASEMaxItems)
	}
	for _, s := range retrieval.Signals {
		if s == retrieval.SignalHistory {
			continue // the same for every item of a user
		}
		r.Baselines = append(r.Baselines, Baseline{"signal:" + s, evaluation.Evaluate(train, test, signalScorer(p.Index, train, s))})
	}
	return r, nil
}

// Table prints the report.
func (r *Report) Table(out io.Writer) {
	fmt.Fprintf(out, "full-catalogue evaluation (%d users, %d items):\n", r.Served.Users, r.Items)
	fmt.Fprintf(out, "  %-18s %8s %9s %8s %8s %8s\n", "method", "NDCG@10", "Recall@10", "MRR@10", "coverage", "AUC")
	line := func(name string, m evaluation.Metrics) {
		fmt.Fprintf(out, "  %-18s %8.4f %9.4f %8.4f %8.4f %8.4f\n", name, m.NDCG10, m.Recall10, m.MRR10, m.Coverage, m.AUC)
	}
	line("served pipeline", r.Served)
	for _, b := range r.Baselines {
		line(b.Name, b.Metrics)
	}
}

// Metrics are the report's numbers under metadata.json's names.
func (r *Report) Metrics() map[string]float64 {
	out := map[string]float64{}
	put := func(prefix string, m evaluation.Metrics) {
		out[prefix+"ndcg_at_10"] = round(m.NDCG10)
		out[prefix+"recall_at_10"] = round(m.Recall10)
		out[prefix+"mrr_at_10"] = round(m.MRR10)
		out[prefix+"coverage"] = round(m.Coverage)
		out[prefix+"auc"] = round(m.AUC)
	}
	put("", r.Served)
	for _, b := range r.Baselines {
		put(strings.ReplaceAll(b.Name, "signal:", "signal_")+"_", b.Metrics)
	}
	return out
}
