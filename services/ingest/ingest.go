// Package ingest loads users, items and ratings into the feature store from
// JSON lines, CSV or MovieLens files (see libs/dataset), in batches, with a
// progress bar.
//
// Every file is read twice: once to validate every row, count them and find
// the newest rating, then once to write. With -on-error=abort (the default)
// a bad row stops the load before anything is written; with skip, bad rows
// are reported with file and line and left out. Loads are idempotent: users
// and items are replaced, and each rating becomes events with ids derived
// from the rating, which the store applies once: a consumed impression (so
// every rated item is in the user's history) and, at the click threshold, a
// click.
package ingest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"time"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
	"github.com/recsys/recsys/libs/dataset"
	"github.com/recsys/recsys/libs/featurestore"
	"github.com/recsys/recsys/libs/progress"
)

// Config is the loader's whole configuration.
type Config struct {
	Redis          featurestore.Config
	Namespace      string
	Users          string
	Items          string
	Ratings        string
	Format         string
	OnError        string
	Batch          int
	ClickThreshold float64
	ShiftToNow     bool
}

// RegisterFlags adds the loader's flags to fs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Redis.RegisterFlags(fs)
	fs.StringVar(&c.Namespace, "redis-namespace", "", "prefix of every feature key")
	fs.StringVar(&c.Users, "users", "", "users file (u.user, users.dat, .csv, .jsonl)")
	fs.StringVar(&c.Items, "items", "", "items file (u.item, movies.dat, movies.csv, .csv, .jsonl)")
	fs.StringVar(&c.Ratings, "ratings", "", "ratings file (u.data, ratings.dat, ratings.csv, .csv, .jsonl); loaded as consumed impressions (every rated item joins the user's history), and clicks at -click-threshold")
	fs.StringVar(&c.Format, "format", "auto", "file format: auto (from the name), jsonl, csv, ml-100k, ml-1m or ml-latest")
	fs.StringVar(&c.OnError, "on-error", "abort", "a bad row: abort (write nothing) or skip (report it and go on)")
	fs.IntVar(&c.Batch, "batch", 500, "rows per write")
	fs.Float64Var(&c.ClickThreshold, "click-threshold", 4, "a rating at or above this is also a click")
	fs.BoolVar(&c.ShiftToNow, "shift-to-now", false, "shift rating times so the newest is now (real-time features of old data decay to zero otherwise)")
}

func (c Config) validate() error {
	var errs []error
	if c.Users == "" && c.Items == "" && c.Ratings == "" {
		errs = append(errs, errors.New("nothing to load: give -users, -items and/or -ratings"))
	}
	if c.OnError != "abort" && c.OnError != "skip" {
		errs = append(errs, fmt.Errorf("-on-error %q: want abort or skip", c.OnError))
	}
	if c.Batch < 1 || c.Batch > 5000 {
		errs = append(errs, fmt.Errorf("-batch %d: want 1..5000", c.Batch))
	}
	return errors.Join(errs...)
}

// Summary counts what a load did.
type Summary struct {
	Users, Items, Ratings int
	Impressions, Clicks   int
	Skipped               int
	Duplicates            int
}

// Run loads the files given in cfg, writing progress and the summary to out.
func Run(ctx context.Context, cfg Config, out io.Writer) (Summary, error) {
	var sum Summary
	if err := cfg.validate(); err != nil {
		return sum, err
	}
	store, closeRedis, err := cfg.Redis.Open(cfg.Namespace)
	if err != nil {
		return sum, err
	}
	defer closeRedis()
	if err := store.Ping(ctx); err != nil {
		return sum, fmt.Errorf("%w (is -redis %s right?)", err, cfg.Redis.Addr)
	}
	start := time.Now()
	l := &loader{cfg: cfg, out: out}
	// Items first: applying a click needs the item's categories.
	if cfg.Items != "" {
		sum.Items, err = load(ctx, l, cfg.Items, "items", dataset.Items, featurestore.ValidateItem, nil,
			func(ctx context.Context, batch []*itemfeaturesv1.ItemAttributes) error {
				return store.UpsertItems(ctx, batch)
			})
		if err != nil {
			return sum, err
		}
	}
	if cfg.Users != "" {
		sum.Users, err = load(ctx, l, cfg.Users, "users", dataset.Users, featurestore.ValidateUser, nil,
			func(ctx context.Context, batch []*userfeaturesv1.UserProfile) error {
				return store.UpsertUsers(ctx, batch)
			})
		if err != nil {
			return sum, err
		}
	}
	if cfg.Ratings != "" {
		var newest time.Time
		observe := func(r dataset.Rating) {
			if r.Time.After(newest) {
				newest = r.Time
			}
		}
		toEvents := func(r dataset.Rating, shift time.Duration) []featurestore.Event {
			id := fmt.Sprintf("rating:%s:%s:%d", r.UserID, r.ItemID, r.Time.Unix())
			// A rating says the user consumed the item, whatever its value:
			// it goes into the user's history.
			evs := []featurestore.Event{{ID: id + ":impression", Kind: featurestore.Impression, Consumed: true, UserID: r.UserID, ItemID: r.ItemID, Time: r.Time.Add(shift)}}
			if r.Rating >= cfg.ClickThreshold {
				evs = append(evs, featurestore.Event{ID: id + ":click", Kind: featurestore.Click, UserID: r.UserID, ItemID: r.ItemID, Time: r.Time.Add(shift)})
			}
			return evs
		}
		var shift time.Duration
		sum.Ratings, err = load(ctx, l, cfg.Ratings, "ratings", dataset.Ratings,
			func(r dataset.Rating) error {
				for _, e := range toEvents(r, 0) {
					if err := e.Validate(); err != nil {
						return err
					}
				}
				return nil
			},
			func(r dataset.Rating) {
				observe(r)
				if cfg.ShiftToNow {
					shift = time.Since(newest)
				}
			},
			func(ctx context.Context, batch []dataset.Rating) error {
				var evs []featurestore.Event
				for _, r := range batch {
					evs = append(evs, toEvents(r, shift)...)
				}
				res, err := store.ApplyEvents(ctx, evs)
				for _, e := range evs[:res.Applied+res.Duplicates] {
					if e.Kind == featurestore.Click {
						sum.Clicks++
					} else {
						sum.Impressions++
					}
				}
				sum.Duplicates += res.Duplicates
				return err
			})
		if err != nil {
			return sum, err
		}
	}
	sum.Skipped = l.skipped
	fmt.Fprintf(out, "loaded %d users, %d items, %d ratings (%d impressions, %d clicks); %d bad rows skipped; %d events already applied before; in %s\n",
		sum.Users, sum.Items, sum.Ratings, sum.Impressions, sum.Clicks, sum.Skipped, sum.Duplicates, time.Since(start).Round(time.Millisecond))
	return sum, nil
}

type loader struct {
	cfg     Config
	out     io.Writer
	skipped int
}

// maxReported bounds the bad rows printed one by one.
const maxReported = 20

// load validates the file (pass 1, calling seen for each good row), then
// writes its good rows in batches (pass 2).
func load[T any](ctx context.Context, l *loader, path, what string,
	read func(io.Reader, string, dataset.Format, ...func(T) error) iter.Seq2[T, error],
	validate func(T) error, seen func(T), write func(context.Context, []T) error,
) (int, error) {
	format := dataset.Format(l.cfg.Format)
	if l.cfg.Format == "auto" {
		var err error
		if format, err = dataset.DetectFormat(path); err != nil {
			return 0, err
		}
	}
	rows := func(yield func(T, error) bool) {
		f, err := os.Open(path)
		if err != nil {
			var zero T
			yield(zero, err)
			return
		}
		defer f.Close()
		for v, err := range read(f, path, format, validate) {
			if !yield(v, err) {
				return
			}
		}
	}

	// Pass 1: validate and count.
	good := 0
	var bad []error
	for v, err := range rows {
		var le *dataset.LineError
		switch {
		case err == nil:
			good++
			if seen != nil {
				seen(v)
			}
		case errors.As(err, &le):
			bad = append(bad, err)
		default:
			return 0, err
		}
	}
	for i, err := range bad {
		if i == maxReported {
			fmt.Fprintf(l.out, "... and %d more bad rows\n", len(bad)-maxReported)
			break
		}
		fmt.Fprintf(l.out, "bad row: %v\n", err)
	}
	if len(bad) > 0 && l.cfg.OnError == "abort" {
		return 0, fmt.Errorf("%s: %d bad rows (first: %v); nothing was written: fix them or pass -on-error=skip", path, len(bad), bad[0])
	}
	l.skipped += len(bad)

	// Pass 2: write.
	bar := progress.New(l.out, "loading "+what, what, int64(good))
	batch := make([]T, 0, l.cfg.Batch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := write(wctx, batch); err != nil {
			return fmt.Errorf("write %s: %w (rows before this batch were written; re-running is safe)", what, err)
		}
		bar.Add(int64(len(batch)))
		batch = batch[:0]
		return nil
	}
	for v, err := range rows {
		if err != nil {
			continue // reported in pass 1
		}
		batch = append(batch, v)
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := flush(); err != nil {
		return 0, err
	}
	bar.Done()
	return good, nil
}
