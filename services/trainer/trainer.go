// Package trainer is the batch job that trains the ranking model and
// publishes it into the model registry (DESIGN.md §6).
//
// Data, one of: a generated world (-world-seed, the default; make run's
// first model), a MovieLens folder (-movielens: a rating at or above
// -click-threshold is a click, each with -negatives sampled unseen items),
// or the platform's own log (-from-log: the ranking.served feature log
// joined with clicks on request id, so training sees exactly what serving
// saw). It trains the DLRM-style Model, evaluates it and a popularity
// baseline on a time-based hold-out, prints the table, writes the metrics
// into metadata.json, and publishes model.onnx + metadata.json atomically.
package trainer

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/recsys/recsys/libs/config"
	"github.com/recsys/recsys/libs/dataset"
	"github.com/recsys/recsys/libs/modelrt"
)

// Config is the job's whole configuration.
type Config struct {
	ModelRoot  string
	ModelName  string
	Version    string
	WorldSeed  uint64
	Users      int
	Items      int
	Sessions   int
	MovieLens  string
	FromLog    bool
	Kafka      config.StringList
	Threshold  float64
	Negatives  int
	Epochs     int
	Dim        int
	MaxSamples int
}

// RegisterFlags adds the job's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.ModelRoot, "model-root", "models", "model registry folder")
	fs.StringVar(&c.ModelName, "model-name", "ctr", "model name in the registry")
	fs.StringVar(&c.Version, "version", "", "version to publish (default: v<UTC time>)")
	fs.Uint64Var(&c.WorldSeed, "world-seed", 1, "seed of the generated world (the default data)")
	fs.IntVar(&c.Users, "world-users", 1000, "users of the generated world")
	fs.IntVar(&c.Items, "world-items", 400, "items of the generated world")
	fs.IntVar(&c.Sessions, "world-sessions", 12000, "sessions of 10 impressions simulated in the generated world")
	fs.StringVar(&c.MovieLens, "movielens", "", "train on a MovieLens folder (u.data + u.item, or ratings.csv + movies.csv)")
	fs.BoolVar(&c.FromLog, "from-log", false, "train on the ranking.served log joined with clicks from Kafka")
	c.Kafka = config.StringList{"localhost:9092"}
	fs.Var(&c.Kafka, "kafka", "Kafka brokers for -from-log")
	fs.Float64Var(&c.Threshold, "click-threshold", 4, "MovieLens: a rating at or above this is a click")
	fs.IntVar(&c.Negatives, "negatives", 4, "MovieLens: sampled non-clicked items per click")
	fs.IntVar(&c.Epochs, "epochs", 3, "training epochs")
	fs.IntVar(&c.Dim, "embedding-dim", 8, "embedding size")
	fs.IntVar(&c.MaxSamples, "max-rows", 2_000_000, "most training rows (the latest are kept)")
}

// Run trains and publishes once; out gets progress and the table.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	_, err := Train(ctx, cfg, os.Stderr)
	return err
}

// Train trains and publishes, returning the result.
func Train(ctx context.Context, cfg Config, out io.Writer) (*Result, error) {
	version := cfg.Version
	if version == "" {
		version = "v" + time.Now().UTC().Format("20060102-150405")
	}
	meta := DefaultMetadata(cfg.ModelName, version)
	var ex []Example
	var err error
	switch {
	case cfg.FromLog && cfg.MovieLens != "":
		return nil, errors.New("-from-log and -movielens: choose one data source")
	case cfg.FromLog:
		ex, err = FromLog(ctx, cfg.Kafka, meta, out)
	case cfg.MovieLens != "":
		ex, err = FromMovieLens(cfg.MovieLens, meta, cfg.Threshold, cfg.Negatives, out)
	default:
		w := NewWorld(cfg.WorldSeed, cfg.Users, cfg.Items)
		fmt.Fprintf(out, "simulating %d sessions in a world of %d users and %d items (seed %d)\n", cfg.Sessions, cfg.Users, cfg.Items, cfg.WorldSeed)
		ex = Examples(meta, w.Catalog(), w.Interactions(cfg.Sessions, 10, time.Now().Add(-48*time.Hour), 48*time.Hour, cfg.WorldSeed))
	}
	if err != nil {
		return nil, err
	}
	if len(ex) > cfg.MaxSamples && cfg.MaxSamples > 0 {
		ex = ex[len(ex)-cfg.MaxSamples:]
	}
	o := DefaultFit()
	o.Train.Epochs = max(cfg.Epochs, 1)
	o.Dim = max(cfg.Dim, 1)
	fmt.Fprintf(out, "training %s %s on %d rows\n", cfg.ModelName, version, len(ex))
	res, err := Fit(meta, ex, o, out)
	if err != nil {
		return nil, err
	}
	res.Table(out)
	if err := Publish(cfg.ModelRoot, meta, res.Model); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "published %s\n", filepath.Join(cfg.ModelRoot, cfg.ModelName, version))
	return res, nil
}

// Publish writes model.onnx and metadata.json into a temporary folder and
// renames it into place, so the registry never sees half a version.
func Publish(root string, meta *modelrt.Metadata, m *Model) error {
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
	os.Chmod(tmp, 0o755)
	return os.Rename(tmp, final)
}

// FromMovieLens builds examples from a MovieLens folder: ratings at or above
// threshold are clicks, and each click brings `negatives` items the user
// never rated, at the same time, as non-clicks.
func FromMovieLens(dir string, meta *modelrt.Metadata, threshold float64, negatives int, out io.Writer) ([]Example, error) {
	itemsPath, ratingsPath := filepath.Join(dir, "u.item"), filepath.Join(dir, "u.data")
	if _, err := os.Stat(ratingsPath); err != nil {
		itemsPath, ratingsPath = filepath.Join(dir, "movies.csv"), filepath.Join(dir, "ratings.csv")
	}
	cats := map[string][]string{}
	if err := readAll(itemsPath, func(f *os.File, format dataset.Format) error {
		for it, err := range dataset.Items(f, itemsPath, format) {
			if err != nil {
				return err
			}
			cats[it.GetItemId()] = it.GetCategories()
		}
		return nil
	}); err != nil {
		return nil, err
	}
	var ins []Interaction
	rated := map[string]map[string]bool{}
	if err := readAll(ratingsPath, func(f *os.File, format dataset.Format) error {
		for r, err := range dataset.Ratings(f, ratingsPath, format) {
			if err != nil {
				return err
			}
			if rated[r.UserID] == nil {
				rated[r.UserID] = map[string]bool{}
			}
			rated[r.UserID][r.ItemID] = true
			if r.Rating >= threshold {
				ins = append(ins, Interaction{UserID: r.UserID, ItemID: r.ItemID, Time: r.Time, Clicked: true})
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	items := make([]string, 0, len(cats))
	for id := range cats {
		items = append(items, id)
	}
	if len(items) == 0 || len(ins) == 0 {
		return nil, fmt.Errorf("%s: no items or no ratings at or above %v", dir, threshold)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	positives := len(ins)
	for _, p := range ins[:positives] {
		for range negatives {
			for range 10 { // a few tries to find an item the user did not rate
				it := items[rng.IntN(len(items))]
				if !rated[p.UserID][it] {
					ins = append(ins, Interaction{UserID: p.UserID, ItemID: it, Time: p.Time})
					break
				}
			}
		}
	}
	fmt.Fprintf(out, "MovieLens %s: %d clicks, %d sampled non-clicks, %d items\n", dir, positives, len(ins)-positives, len(items))
	return Examples(meta, cats, ins), nil
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
