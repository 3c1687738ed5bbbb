// Package trainer is the batch job that fits the served pipeline and
// publishes it into the model registry (docs/architecture.md, "Models").
//
// Data, one of: a generated world (-world-seed, the default; make run's
// first model: its clicks), a MovieLens folder (-movielens: every rating
// is an interaction, relevant at or above -click-threshold), or the
// platform's own logs (-from-log: the clicks of feedback.events for the
// retrieval index, and the ranking.served feature log joined with clicks
// on request id for the ranker, so it learns from exactly what serving
// saw). It evaluates the served pipeline (retrieval → ranking) on each
// user's latest interactions over the whole catalogue beside popularity,
// item-kNN, EASE and each retrieval signal alone, prints the table, writes
// the metrics into metadata.json, refits on all the data, and publishes
// model.onnx, metadata.json and the retrieval index atomically.
package trainer

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/recsys/recsys/libs/dataset"
	"github.com/recsys/recsys/libs/evaluation"
	"github.com/recsys/recsys/libs/eventstream"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/retrieval"
	"github.com/recsys/recsys/libs/servicemap"
)

// Config is the job's whole configuration.
type Config struct {
	ModelRoot    string
	ModelName    string
	Version      string
	WorldSeed    uint64
	Users        int
	Items        int
	Interactions int
	MovieLens    string
	FromLog      bool
	Kafka        eventstream.Config
	Threshold    float64
	Epochs       int
	Dim          int
	Neighbors    int
	Lambda       float64
	EASEMaxItems int
	EvalUsers    int
	MaxSamples   int
	EvalOnly     bool
	IfEmpty      bool
}

// RegisterFlags adds the job's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	d := DefaultPipeline()
	fs.StringVar(&c.ModelRoot, "model-root", "models", "model registry folder")
	fs.StringVar(&c.ModelName, "model-name", "ctr", "model name in the registry")
	fs.StringVar(&c.Version, "version", "", "version to publish (default: v<UTC time>)")
	fs.Uint64Var(&c.WorldSeed, "world-seed", 1, "seed of the generated world (the default data)")
	fs.IntVar(&c.Users, "world-users", 1000, "users of the generated world")
	fs.IntVar(&c.Items, "world-items", 400, "items of the generated world")
	fs.IntVar(&c.Interactions, "world-interactions", 30000, "items the generated world's users choose for themselves (the training data)")
	fs.StringVar(&c.MovieLens, "movielens", "", "train on a MovieLens folder (u.data + u.item, ratings.dat + movies.dat, or ratings.csv + movies.csv)")
	fs.BoolVar(&c.FromLog, "from-log", false, "train on the platform's logs in Kafka: clicks for retrieval, the ranking.served log joined with clicks for the ranker")
	c.Kafka.RegisterFlags(fs, []string{servicemap.DefaultKafka}, "Kafka brokers for -from-log")
	fs.Float64Var(&c.Threshold, "click-threshold", 4, "MovieLens: a rating at or above this is relevant (a click)")
	fs.IntVar(&c.Epochs, "epochs", d.Fit.Train.Epochs, "ranker training epochs")
	fs.IntVar(&c.Dim, "embedding-dim", d.Dim, "item vector size of the embedding retrieval source")
	fs.IntVar(&c.Neighbors, "neighbors", d.Neighbors, "item-to-item neighbours published per item")
	fs.Float64Var(&c.Lambda, "ease-lambda", d.Lambda, "EASE's L2 regularisation")
	fs.IntVar(&c.EASEMaxItems, "ease-max-items", d.EASEMaxItems, "EASE runs over at most this many most-used items (its cost grows with the cube of the count)")
	fs.IntVar(&c.MaxSamples, "max-rows", 2_000_000, "-from-log: most logged rows for the ranker (the latest are kept)")
	fs.BoolVar(&c.EvalOnly, "eval-only", false, "evaluate and print the table; publish nothing")
	fs.IntVar(&c.EvalUsers, "eval-users", 0, "measure the table on a seeded sample of this many users, each still over the whole catalogue (0: all; coverage is lower over fewer users); evaluation costs users × items")
	fs.BoolVar(&c.IfEmpty, "if-empty", false, "do nothing when the registry already has a version of -model-name (a cluster's first-model job)")
}

// Run trains and publishes once; out gets progress and the table.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	_, err := Train(ctx, cfg, os.Stderr)
	return err
}

// Result is what Train fitted and measured.
type Result struct {
	Pipeline *Pipeline
	Report   *Report
	Meta     *modelrt.Metadata
	Dir      string // the published version's folder ("" with EvalOnly)
}

// options are the pipeline options cfg sets.
func (cfg Config) options() PipelineOptions {
	o := DefaultPipeline()
	o.Fit.Train.Epochs = max(cfg.Epochs, 1)
	o.Dim = cfg.Dim
	o.Neighbors = cmp.Or(cfg.Neighbors, o.Neighbors)
	o.Lambda = cmp.Or(cfg.Lambda, o.Lambda)
	o.EASEMaxItems = cmp.Or(cfg.EASEMaxItems, o.EASEMaxItems)
	o.EvalUsers = cfg.EvalUsers
	o.Seed = cmp.Or(cfg.WorldSeed, o.Seed)
	return o
}

// Train evaluates, fits and publishes, returning the result.
func Train(ctx context.Context, cfg Config, out io.Writer) (*Result, error) {
	version := cfg.Version
	if version == "" {
		version = "v" + time.Now().UTC().Format("20060102-150405")
	}
	if cfg.IfEmpty {
		// A version is a folder with metadata.json; hidden ones are a
		// publish in progress.
		if found, _ := filepath.Glob(filepath.Join(cfg.ModelRoot, cfg.ModelName, "[^.]*", "metadata.json")); len(found) > 0 {
			fmt.Fprintf(out, "%s already holds %d version(s): -if-empty, nothing to train\n", filepath.Join(cfg.ModelRoot, cfg.ModelName), len(found))
			return &Result{}, nil
		}
	}
	final := filepath.Join(cfg.ModelRoot, cfg.ModelName, version)
	if _, err := os.Stat(final); err == nil && !cfg.EvalOnly {
		return nil, fmt.Errorf("%s exists; versions are immutable, pick another -version", final)
	}
	meta := RankerMetadata(cfg.ModelName, version)
	var d *evaluation.Data
	var err error
	var kc eventstream.Cluster
	if cfg.FromLog {
		if kc, err = cfg.Kafka.Cluster(); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.EvalUsers < 0:
		return nil, fmt.Errorf("-eval-users %d: want 0 (every user) or a number of users", cfg.EvalUsers)
	case cfg.FromLog && cfg.MovieLens != "":
		return nil, errors.New("-from-log and -movielens: choose one data source")
	case cfg.FromLog:
		d, err = ClicksFromLog(ctx, kc, out)
	case cfg.MovieLens != "":
		d, err = FromMovieLens(cfg.MovieLens, cfg.Threshold, out)
	default:
		w := NewWorld(cfg.WorldSeed, cfg.Users, cfg.Items)
		fmt.Fprintf(out, "simulating %d choices in a world of %d users and %d items (seed %d)\n", cfg.Interactions, cfg.Users, cfg.Items, cfg.WorldSeed)
		d = w.Data(w.Consumption(cfg.Interactions, time.Now().Add(-Cycle), Cycle, cfg.WorldSeed))
	}
	if err != nil {
		return nil, err
	}
	o := cfg.options()
	rep, err := EvaluatePipeline(d, meta, o, out)
	if err != nil {
		return nil, err
	}
	rep.Table(out)
	res := &Result{Report: rep, Meta: meta}
	if cfg.EvalOnly {
		return res, nil
	}
	if cfg.FromLog {
		// The ranker also learns from exactly the rows serving scored,
		// each served list a group, beside the candidates it draws itself
		// (the logged rows alone cover only what the old ranking showed).
		ex, err := FromLog(ctx, kc, meta, out)
		if err != nil {
			return nil, err
		}
		if len(ex) > cfg.MaxSamples && cfg.MaxSamples > 0 {
			ex = ex[len(ex)-cfg.MaxSamples:]
		}
		logged, err := Fit(meta, ex, o.Fit, out)
		if err != nil {
			return nil, err
		}
		logged.Table(out)
		o.Logged = ex
	}
	fmt.Fprintf(out, "fitting %s %s on all the data\n", cfg.ModelName, version)
	if res.Pipeline, err = FitPipeline(d, meta, o, out); err != nil {
		return nil, err
	}
	meta.Metrics = mergeMetrics(meta.Metrics, rep.Metrics())
	meta.Training = span(d)
	meta.CreatedAt = time.Now().UTC()
	if err := Publish(cfg.ModelRoot, meta, res.Pipeline.Model, res.Pipeline.Index); err != nil {
		return nil, err
	}
	res.Dir = final
	fmt.Fprintf(out, "published %s\n", final)
	return res, nil
}

func mergeMetrics(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	maps.Copy(out, a)
	maps.Copy(out, b)
	return out
}

// span is the data's time span and interaction count.
func span(d *evaluation.Data) *modelrt.TrainingSpan {
	s := &modelrt.TrainingSpan{}
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	for _, evs := range d.ByUser {
		for _, e := range evs {
			first, last = min(first, e.Time), max(last, e.Time)
			s.Rows++
		}
	}
	if s.Rows > 0 {
		s.From, s.To = time.UnixMilli(first).UTC(), time.UnixMilli(last).UTC()
	}
	return s
}

// Publish writes model.onnx and metadata.json into a temporary folder and
// renames it into place, so the registry never sees half a version.
func Publish(root string, meta *modelrt.Metadata, m *Model, index *retrieval.Index) error {
	dir := filepath.Join(root, meta.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	final := filepath.Join(dir, meta.Version)
	if _, err := os.Stat(final); err == nil {
		return fmt.Errorf("publish: %s exists; versions are immutable, pick another -version", final)
	}
	b, err := metaJSON(meta)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(dir, ".publish-")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "model.onnx"), m.ONNX(meta.Name+"-"+meta.Version), 0o644); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "metadata.json"), b, 0o644); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if index != nil {
		if err := index.Write(filepath.Join(tmp, retrieval.FileName)); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	os.Chmod(tmp, 0o755)
	return os.Rename(tmp, final)
}

// FromMovieLens reads a MovieLens folder: every rating is an interaction
// (the user consumed the item), relevant at or above threshold; the
// catalogue is every item of the items file.
func FromMovieLens(dir string, threshold float64, out io.Writer) (*evaluation.Data, error) {
	var itemsPath, ratingsPath string
	for _, layout := range [][2]string{{"u.item", "u.data"}, {"movies.dat", "ratings.dat"}, {"movies.csv", "ratings.csv"}} {
		if _, err := os.Stat(filepath.Join(dir, layout[1])); err == nil {
			itemsPath, ratingsPath = filepath.Join(dir, layout[0]), filepath.Join(dir, layout[1])
			break
		}
	}
	if ratingsPath == "" {
		return nil, fmt.Errorf("%s has no MovieLens ratings: want u.data + u.item (ml-100k), ratings.dat + movies.dat (ml-1m, ml-10m) or ratings.csv + movies.csv (ml-latest, ml-20m, ml-25m)", dir)
	}
	var catalogue []string
	if err := readAll(itemsPath, func(f *os.File, format dataset.Format) error {
		for it, err := range dataset.Items(f, itemsPath, format) {
			if err != nil {
				return err
			}
			catalogue = append(catalogue, it.GetItemId())
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var ins []evaluation.Interaction
	relevant := 0
	if err := readAll(ratingsPath, func(f *os.File, format dataset.Format) error {
		for r, err := range dataset.Ratings(f, ratingsPath, format) {
			if err != nil {
				return err
			}
			ins = append(ins, evaluation.Interaction{User: r.UserID, Item: r.ItemID, Time: r.Time, Relevant: r.Rating >= threshold})
			if r.Rating >= threshold {
				relevant++
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if len(catalogue) == 0 || relevant == 0 {
		return nil, fmt.Errorf("%s: no items, or no ratings at or above %v", dir, threshold)
	}
	d := evaluation.NewData(ins, catalogue)
	fmt.Fprintf(out, "MovieLens %s: %d ratings (%d at or above %v) by %d users, %d items\n", dir, len(ins), relevant, threshold, len(d.Users), len(d.Items))
	return d, nil
}

func readAll(path string, f func(*os.File, dataset.Format) error) error {
	format, err := dataset.DetectFormat(path)
	if err != nil {
		return err
	}
	file, err := os.Open(path)
	if err != nil {
		return err
	}
	defer file.Close()
	return f(file, format)
}
