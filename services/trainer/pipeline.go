package trainer

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
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
	// EvalUsers bounds the users the table and the inner split's choice
	// of neighbours are measured on (0: all): a seeded sample, each still
	// ranked over the whole catalogue, so NDCG, recall, MRR and AUC are
	// unbiased estimates of the all-user ones (coverage, the items
	// recommended to someone, is lower over fewer users). Whole-catalogue
	// evaluation costs users × items. The ranker still learns from every
	// user.
	EvalUsers int
	Quotas    retrieval.Quotas
	Fit       FitOptions
	Seed      uint64
	// Logged are rows serving scored, joined with clicks (-from-log): the
	// ranker learns from them too, each served list a group.
	Logged []Example
}

// DefaultPipeline is what the trainer uses unless told otherwise.
func DefaultPipeline() PipelineOptions {
	fit := DefaultFit()
	fit.Train.Epochs = 8
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
	Index  *retrieval.Index
	Model  *Model
	Meta   *modelrt.Metadata
	Quotas retrieval.Quotas
	// Neighbors and Liked are the item-to-item models chosen on the inner
	// hold-out for the history and for the clicked items, with the
	// candidates' inner hold-out metrics.
	Neighbors, Liked NeighborModel
	Candidates       []Candidate
	Loss             float64 // the ranker's last training loss
}

// NeighborModel is an item-to-item model: EASE with its λ, or cosine
// item-kNN.
type NeighborModel struct {
	Kind   string // "ease" or "itemknn"
	Lambda float64
}

func (n NeighborModel) String() string {
	if n.Kind == "ease" {
		return fmt.Sprintf("EASE λ=%g", n.Lambda)
	}
	return "item-kNN"
}

// fit fits the model on d, keeping k neighbours an item.
func (n NeighborModel) fit(d *evaluation.Data, o PipelineOptions) (*evaluation.ItemModel, error) {
	if n.Kind == "ease" {
		return evaluation.EASE(d, n.Lambda, o.Neighbors, o.EASEMaxItems)
	}
	return evaluation.ItemKNN(d, o.Neighbors), nil
}

// Candidate is one item-to-item model tried on the inner hold-out.
type Candidate struct {
	For     string // "history" or "clicked"
	Model   NeighborModel
	Metrics evaluation.Metrics
}

// relevantOnly is d with only its relevant events (same users and
// catalogue); nil when every event is relevant.
func relevantOnly(d *evaluation.Data) *evaluation.Data {
	out := &evaluation.Data{Users: d.Users, Items: d.Items, ItemIndex: d.ItemIndex, ByUser: make([][]evaluation.Event, len(d.ByUser))}
	all := true
	for u, evs := range d.ByUser {
		for _, e := range evs {
			if e.Relevant {
				out.ByUser[u] = append(out.ByUser[u], e)
			} else {
				all = false
			}
		}
	}
	if all {
		return nil
	}
	return out
}

// onClicked scores a user by their relevant events only.
func onClicked(rel *evaluation.Data, score evaluation.Scorer) evaluation.Scorer {
	return func(u int, _ []evaluation.Event, scores []float32) { score(u, rel.ByUser[u], scores) }
}

// FitPipeline fits the served pipeline on d. The ranker needs labels the
// retrieval stage did not see, so d is split once more per user: the
// index is fitted on the earlier part, its candidates for each user are
// labelled by the user's later part, and the ranker learns from exactly
// those rows (negatives drawn the way serving draws candidates). The
// item-to-item models are chosen on that inner split too. The published
// index is then fitted again on the whole of d.
func FitPipeline(d *evaluation.Data, meta *modelrt.Metadata, o PipelineOptions, out io.Writer) (*Pipeline, error) {
	fit, val := d.Split(o.Holdout)
	valSample := sampleUsers(val, o.EvalUsers, o.Seed) // the choices are measured as the table is
	relFit := relevantOnly(fit)
	p := &Pipeline{Meta: meta, Quotas: o.Quotas}
	step := func(format string, args ...any) func() {
		start := time.Now()
		fmt.Fprintf(out, "  "+format+"...", args...)
		return func() { fmt.Fprintf(out, " %s\n", time.Since(start).Round(time.Millisecond)) }
	}

	// Choose the item-to-item models on the inner split: for the whole
	// history, EASE or item-kNN; for the clicked items (when the data
	// says which interactions were liked), EASE over a few λ, fitted on
	// the liked interactions alone. (Item-kNN is not tried there: on
	// MovieLens-100k the inner split preferred it by a hair while EASE
	// was clearly better on the real hold-out, and the history's list
	// already offers the ranker a cosine view.)
	choose := func(what string, data *evaluation.Data, tries []NeighborModel) (NeighborModel, *evaluation.ItemModel, error) {
		var best NeighborModel
		var bestModel *evaluation.ItemModel
		bestNDCG := -1.0
		for _, n := range tries {
			m, err := n.fit(data, o)
			if err != nil {
				return best, nil, err
			}
			score := m.Scorer()
			if what == "clicked" {
				score = onClicked(data, score)
			}
			met := evaluation.Evaluate(fit, valSample, score)
			p.Candidates = append(p.Candidates, Candidate{For: what, Model: n, Metrics: met})
			if met.NDCG10 > bestNDCG {
				best, bestModel, bestNDCG = n, m, met.NDCG10
			}
		}
		fmt.Fprintf(out, "  neighbours for the %s on the inner hold-out:", what)
		for _, c := range p.Candidates {
			if c.For == what {
				fmt.Fprintf(out, " %s %.4f;", c.Model, c.Metrics.NDCG10)
			}
		}
		fmt.Fprintf(out, " publishing %s\n", best)
		return best, bestModel, nil
	}
	done := step("inner split: item-to-item models over %d items", len(d.Items))
	fmt.Fprintln(out)
	var nbs, liked *evaluation.ItemModel
	var err error
	p.Neighbors, nbs, err = choose("history", fit, []NeighborModel{{"ease", o.Lambda}, {Kind: "itemknn"}})
	if err != nil {
		return nil, err
	}
	if relFit != nil {
		var tries []NeighborModel
		for _, f := range []float64{0.2, 0.5, 1, 2} {
			tries = append(tries, NeighborModel{"ease", o.Lambda * f})
		}
		if p.Liked, liked, err = choose("clicked", relFit, tries); err != nil {
			return nil, err
		}
	}
	done()

	done = step("ranker rows from the inner split's candidates")
	inner := buildIndex(fit, nbs, liked, o)
	rows, labels, groups := rankerRows(inner, fit, val, meta, o.Quotas)
	if len(o.Logged) > 0 {
		lr, ll, lg := loggedRows(o.Logged)
		for _, g := range lg[1:] {
			groups = append(groups, len(labels)+g)
		}
		rows, labels = append(rows, lr...), append(labels, ll...)
		fmt.Fprintf(out, "  ranker: and %d logged rows\n", len(ll))
	}
	done()
	if len(labels) == 0 {
		return nil, fmt.Errorf("no user has a relevant interaction in the latest %.0f%% of their history: nothing to train the ranker on", o.Holdout*100)
	}
	pos := 0
	for _, l := range labels {
		pos += int(l)
	}
	fmt.Fprintf(out, "  ranker: %d candidate rows, %d relevant\n", len(labels), pos)
	p.Model, p.Loss = trainRanker(meta, rows, labels, groups, o.Fit, out)

	done = step("final index on all %d users", len(d.Users))
	if nbs, err = p.Neighbors.fit(d, o); err != nil {
		return nil, err
	}
	liked = nil
	if rel := relevantOnly(d); rel != nil {
		if liked, err = p.Liked.fit(rel, o); err != nil {
			return nil, err
		}
	}
	p.Index = buildIndex(d, nbs, liked, o)
	done()
	return p, nil
}

// buildIndex assembles a retrieval index over d's catalogue: the
// neighbours of nbs and liked (nil: none), item vectors from the liked
// interactions (all of them when the data does not tell), popularity.
func buildIndex(d *evaluation.Data, nbs, liked *evaluation.ItemModel, o PipelineOptions) *retrieval.Index {
	x := &retrieval.Index{Items: d.Items, Neighbors: neighbors(nbs), Liked: neighbors(liked)}
	if o.Dim > 0 && len(d.Items) > o.Dim {
		basis := d
		if rel := relevantOnly(d); rel != nil {
			basis = rel
		}
		x.Dim, x.Vectors = o.Dim, evaluation.PureSVD(basis, o.Dim, o.SVDIters, o.Seed)
	}
	x.Popularity, x.Trend, x.LikedRate = popularity(d)
	return x
}

func neighbors(m *evaluation.ItemModel) [][]retrieval.Neighbor {
	if m == nil {
		return nil
	}
	out := make([][]retrieval.Neighbor, len(m.Neighbors))
	for j, list := range m.Neighbors {
		out[j] = make([]retrieval.Neighbor, len(list))
		for k, nb := range list {
			out[j][k] = retrieval.Neighbor{Item: nb.Item, Weight: nb.Weight}
		}
	}
	return out
}

// popularity is each item's ln(1 + interactions), ln(1 + interactions
// decayed with a half-life of a tenth of the data's time span, at its
// end), and the share of its interactions that were liked, smoothed
// towards the catalogue's share with the weight of five interactions.
func popularity(d *evaluation.Data) (pop, trend, likedRate []float32) {
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	total, liked := 0.0, 0.0
	for _, evs := range d.ByUser {
		for _, e := range evs {
			first, last = min(first, e.Time), max(last, e.Time)
			total++
			if e.Relevant {
				liked++
			}
		}
	}
	prior := liked / max(total, 1)
	halfLife := max(float64(last-first)/10, 1)
	count, decayed, likes := make([]float64, len(d.Items)), make([]float64, len(d.Items)), make([]float64, len(d.Items))
	for _, evs := range d.ByUser {
		for _, e := range evs {
			count[e.Item]++
			decayed[e.Item] += math.Exp2(-float64(last-e.Time) / halfLife)
			if e.Relevant {
				likes[e.Item]++
			}
		}
	}
	pop, trend, likedRate = make([]float32, len(d.Items)), make([]float32, len(d.Items)), make([]float32, len(d.Items))
	for i := range pop {
		pop[i], trend[i] = float32(math.Log1p(count[i])), float32(math.Log1p(decayed[i]))
		likedRate[i] = float32((likes[i] + 5*prior) / (count[i] + 5))
	}
	return pop, trend, likedRate
}

// UserOf is what the feature store would hold of a user with these
// events (in time order): the consumed items and the clicked (relevant)
// ones, each distinct, newest first, at most historyLength.
func UserOf(d *evaluation.Data, events []evaluation.Event) retrieval.User {
	newest := func(keep func(evaluation.Event) bool) []string {
		out := make([]string, 0, min(len(events), historyLength))
		seen := make(map[int32]bool, len(events))
		for k := len(events) - 1; k >= 0 && len(out) < historyLength; k-- {
			if e := events[k]; keep(e) && !seen[e.Item] {
				seen[e.Item] = true
				out = append(out, d.Items[e.Item])
			}
		}
		return out
	}
	return retrieval.User{History: newest(func(evaluation.Event) bool { return true }), Clicked: newest(func(e evaluation.Event) bool { return e.Relevant })}
}

// historyLength is how many consumed items the feature store keeps a user.
const historyLength = 1000

// rankerRows are the candidates retrieval proposes for each user of fit
// that has a relevant event in val, with their feature rows, labelled 1
// when the user's val part has them as relevant.
// groups are where each user's rows start (and, last, the end).
func rankerRows(x *retrieval.Index, fit, val *evaluation.Data, meta *modelrt.Metadata, q retrieval.Quotas) (rows, labels []float32, groups []int) {
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
		res := x.Retrieve(UserOf(fit, fit.ByUser[u]), nil, q)
		groups = append(groups, len(labels))
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
	return rows, labels, append(groups, len(labels))
}

// trainRanker fits the MLP on standardised dense inputs with a pairwise
// loss within each user's candidates (groups), calibrates its output to a
// probability of relevance (Platt scaling on the same rows), and folds
// the standardisation into its first layer, so the exported model takes
// the raw rows serving assembles.
//
// It trains rankerEnsemble such models from different seeds and averages
// them (one model with wider layers, see ensemble): the ranker is small
// and trained on few relevant rows, and an average of a few varies far
// less from seed to seed than any one of them.
func trainRanker(meta *modelrt.Metadata, rows, labels []float32, groups []int, o FitOptions, out io.Writer) (*Model, float64) {
	var members []*Model
	var mean, std []float64
	loss := 0.0
	for k := range rankerEnsemble {
		m := NewModel(meta, o.Dim, o.H1, o.H2, o.Train.Seed+uint64(k)*7919)
		if k == 0 {
			mean, std = standardize(rows, len(meta.Features), m.Dense)
		}
		opts := o.Train
		opts.Seed += uint64(k) * 7919
		opts.Groups, opts.Negatives = groups, rankerNegatives
		if out != nil {
			opts.EpochDone = func(epoch int, loss float64) {
				if epoch+1 == opts.Epochs {
					fmt.Fprintf(out, "  ranker %d/%d: %d epochs, pairwise loss %.4f\n", k+1, rankerEnsemble, opts.Epochs, loss)
				}
			}
		}
		loss += m.Train(rows, labels, opts) / rankerEnsemble
		members = append(members, m)
	}
	m := ensemble(members)
	m.calibrate(rows, labels)
	m.foldScaling(mean, std)
	return m, loss
}

// rankerEnsemble is how many rankers trainRanker averages.
const rankerEnsemble = 3

// ensemble is one model whose logit is the mean of the members' logits:
// their first layers side by side, their second layers block-diagonal,
// their output weights divided by their number. Members share the
// layout and have no embeddings.
func ensemble(members []*Model) *Model {
	k := len(members)
	first := members[0]
	m := &Model{Dense: first.Dense, Sparse: first.Sparse, Width: first.Width, Rows: first.Rows, Dim: first.Dim, H1: k * first.H1, H2: k * first.H2,
		W1: make([]float32, 0, k*len(first.W1)), W2: make([]float32, k*first.H2*k*first.H1)}
	for e, mem := range members {
		m.W1 = append(m.W1, mem.W1...)
		m.B1 = append(m.B1, mem.B1...)
		m.B2 = append(m.B2, mem.B2...)
		for i := range mem.H2 {
			row := (e*mem.H2 + i) * m.H1
			copy(m.W2[row+e*mem.H1:], mem.W2[i*mem.H1:(i+1)*mem.H1])
		}
		for _, w := range mem.W3 {
			m.W3 = append(m.W3, w/float32(k))
		}
		m.B3 += mem.B3 / float32(k)
	}
	return m
}

// rankerNegatives are the irrelevant candidates each relevant one is
// paired with per epoch.
const rankerNegatives = 8

// calibrate rescales the output logit to σ(a·z + b), with a and b fitted
// by Newton's method to the labels (Platt scaling), and folds them into
// the last layer: a pairwise loss fixes the order, not the level.
func (m *Model) calibrate(rows, labels []float32) {
	act := m.newActivations()
	z := make([]float64, len(labels))
	for r := range z {
		m.forward(rows[r*m.Width:(r+1)*m.Width], act)
		z[r] = float64(act.z)
	}
	a, b := 1.0, 0.0
	for range 25 {
		var ga, gb, haa, hab, hbb float64
		for r, zr := range z {
			p := 1 / (1 + math.Exp(-(a*zr + b)))
			d, w := p-float64(labels[r]), p*(1-p)
			ga, gb = ga+d*zr, gb+d
			haa, hab, hbb = haa+w*zr*zr, hab+w*zr, hbb+w
		}
		haa, hbb = haa+1e-6, hbb+1e-6 // a small ridge: a constant logit still fits b
		det := haa*hbb - hab*hab
		da, db := (hbb*ga-hab*gb)/det, (haa*gb-hab*ga)/det
		a, b = a-da, b-db
		if math.Abs(da)+math.Abs(db) < 1e-9 {
			break
		}
	}
	for j := range m.W3 {
		m.W3[j] = float32(a * float64(m.W3[j]))
	}
	m.B3 = float32(a*float64(m.B3) + b)
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
		res := p.Index.Retrieve(UserOf(d, history), nil, p.Quotas)
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
		copy(scores, x.ScoreAll(UserOf(d, history))[signal])
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
	Detail  string // its setting, when it was tuned
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
	if sampled := sampleUsers(test, o.EvalUsers, o.Seed); sampled != test {
		test = sampled
		fmt.Fprintf(out, "  the table is measured on a seeded sample of %d users (-eval-users), each over the whole catalogue\n", o.EvalUsers)
	}
	p, err := FitPipeline(train, meta, o, out)
	if err != nil {
		return nil, err
	}
	// The whole-catalogue evaluations take minutes on a large catalogue:
	// each says when it is done, with the time since start.
	evaluated := func(what string, met evaluation.Metrics, start time.Time) {
		fmt.Fprintf(out, "  evaluated %s: NDCG@10 %.4f (%s)\n", what, met.NDCG10, time.Since(start).Round(time.Millisecond))
	}
	start := time.Now()
	r.Served = evaluation.Evaluate(train, test, p.Scorer(train))
	evaluated("the served pipeline", r.Served, start)
	r.Baselines = append(r.Baselines, Baseline{Name: "popularity", Metrics: evaluation.Evaluate(train, test, evaluation.Popularity(train))})
	// item-kNN and EASE as practitioners run them, and then some: on the
	// liked interactions when the data says which were liked (ratings at
	// or above the threshold) and on all of them, over a few K and λ,
	// each reported at its best on this very hold-out — an upper bound on
	// what tuning them would give, so the served pipeline is measured
	// against the strongest version of each.
	variants := []*evaluation.Data{train}
	if rel := relevantOnly(train); rel != nil {
		variants = append(variants, rel)
	}
	best := func(name string, fit func(base *evaluation.Data, param float64) (*evaluation.ItemModel, error), params []float64) (Baseline, error) {
		b := Baseline{Name: name}
		for _, base := range variants {
			for _, param := range params {
				start := time.Now()
				m, err := fit(base, param)
				if err != nil {
					return b, err
				}
				score := m.Scorer()
				if base != train {
					score = onClicked(base, score)
				}
				detail := fmt.Sprintf("%g on %s", param, map[bool]string{true: "all interactions", false: "liked ones"}[base == train])
				met := evaluation.Evaluate(train, test, score)
				evaluated(name+" "+detail, met, start)
				if met.NDCG10 > b.Metrics.NDCG10 {
					b.Metrics, b.Detail = met, detail
				}
			}
		}
		return b, nil
	}
	knn, _ := best("itemknn", func(base *evaluation.Data, k float64) (*evaluation.ItemModel, error) {
		return evaluation.ItemKNN(base, int(k)), nil
	}, []float64{50, 100, 200})
	knn.Detail = "K=" + knn.Detail
	r.Baselines = append(r.Baselines, knn)
	// EASE over at most EASEMaxItems most-used items, as the pipeline's
	// own: the strongest simple baseline is never left out.
	ease, err := best("ease", func(base *evaluation.Data, lambda float64) (*evaluation.ItemModel, error) {
		return evaluation.EASE(base, lambda, 0, o.EASEMaxItems)
	}, []float64{o.Lambda / 5, o.Lambda / 2, o.Lambda, o.Lambda * 2})
	if err != nil {
		return nil, err
	}
	ease.Detail = "λ=" + ease.Detail
	if rated(train) > o.EASEMaxItems {
		ease.Detail += fmt.Sprintf(", over the %d most-used items (-ease-max-items)", o.EASEMaxItems)
	}
	r.Baselines = append(r.Baselines, ease)
	fmt.Fprintf(out, "  item-kNN and EASE are each shown at their best K or λ on this hold-out, on all or only the liked interactions\n")
	for _, s := range retrieval.Signals {
		if s == retrieval.SignalHistory || s == retrieval.SignalClicked || strings.HasSuffix(s, retrieval.RelativeSuffix) {
			continue // the same for every item of a user, or the same order as its raw signal
		}
		if len(variants) == 1 && (s == retrieval.SignalLiked || s == retrieval.SignalLikedRecent || s == retrieval.SignalLikedRate) {
			continue // every interaction is liked: nothing to tell
		}
		start := time.Now()
		met := evaluation.Evaluate(train, test, signalScorer(p.Index, train, s))
		evaluated("signal:"+s+" alone", met, start)
		r.Baselines = append(r.Baselines, Baseline{Name: "signal:" + s, Metrics: met})
	}
	return r, nil
}

// rated is the number of items d's users interacted with (what EASE
// runs over, up to its bound).
func rated(d *evaluation.Data) int {
	seen := make([]bool, len(d.Items))
	n := 0
	for _, evs := range d.ByUser {
		for _, e := range evs {
			if !seen[e.Item] {
				seen[e.Item] = true
				n++
			}
		}
	}
	return n
}

// sampleUsers keeps the test events of n users drawn with seed among
// those the evaluation measures (a relevant test event); test itself when
// they are no more than n (or n is 0).
func sampleUsers(test *evaluation.Data, n int, seed uint64) *evaluation.Data {
	var with []int
	for u, evs := range test.ByUser {
		if slices.ContainsFunc(evs, func(e evaluation.Event) bool { return e.Relevant }) {
			with = append(with, u)
		}
	}
	if n <= 0 || len(with) <= n {
		return test
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	rng.Shuffle(len(with), func(i, j int) { with[i], with[j] = with[j], with[i] })
	out := *test
	out.ByUser = make([][]evaluation.Event, len(test.ByUser))
	for _, u := range with[:n] {
		out.ByUser[u] = test.ByUser[u]
	}
	return &out
}

// Table prints the report.
func (r *Report) Table(out io.Writer) {
	fmt.Fprintf(out, "full-catalogue evaluation (%d users, %d items):\n", r.Served.Users, r.Items)
	fmt.Fprintf(out, "  %-18s %8s %9s %8s %8s %8s\n", "method", "NDCG@10", "Recall@10", "MRR@10", "coverage", "AUC")
	line := func(name string, m evaluation.Metrics, detail string) {
		fmt.Fprintf(out, "  %-18s %8.4f %9.4f %8.4f %8.4f %8.4f  %s\n", name, m.NDCG10, m.Recall10, m.MRR10, m.Coverage, m.AUC, detail)
	}
	line("served pipeline", r.Served, "")
	for _, b := range r.Baselines {
		line(b.Name, b.Metrics, b.Detail)
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
