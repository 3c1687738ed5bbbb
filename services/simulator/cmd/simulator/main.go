// Command simulator drives a running platform with simulated users (see
// the package documentation); with -scenario it runs the whole closed loop:
// traffic, retraining from the logs, a 50/50 experiment, its report.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"

	"github.com/recsys/recsys/libs/config"
	"github.com/recsys/recsys/libs/servicemap"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/services/simulator"
	"github.com/recsys/recsys/services/trainer"
)

func main() {
	var (
		cfg      simulator.Config
		scenario bool
		sc       simulator.ScenarioConfig
		kafka    = config.StringList{servicemap.DefaultKafka}
	)
	serving.Main("simulator", func(fs *flag.FlagSet) {
		cfg.RegisterFlags(fs)
		fs.BoolVar(&scenario, "scenario", false, "run the closed loop: simulate, retrain from the logs, A/B the new model, report")
		fs.StringVar(&sc.ModelRoot, "model-root", "models", "scenario: the ranking service's model registry")
		fs.StringVar(&sc.ModelName, "model-name", "ctr", "scenario: the model name")
		fs.StringVar(&sc.ExperimentFile, "experiment-file", "experiments.json", "scenario: the ranking service's -experiment-file")
		fs.Var(&kafka, "kafka", "scenario: Kafka brokers holding the logs")
		fs.IntVar(&sc.Before, "sessions-before", 3000, "scenario: sessions before retraining")
		fs.IntVar(&sc.After, "sessions-after", 6000, "scenario: sessions in the experiment")
	}, func(ctx context.Context, logger *slog.Logger) error {
		cl, closeAll, err := simulator.Dial(cfg)
		if err != nil {
			return err
		}
		defer closeAll()
		if scenario {
			sc.Sim, sc.Kafka = cfg, kafka
			_, err := simulator.Scenario(ctx, cl, sc, os.Stderr)
			return err
		}
		w := trainer.NewWorld(cfg.WorldSeed, cfg.Users, cfg.Items)
		if cfg.Seed {
			if err := simulator.SeedWorld(ctx, cl, w); err != nil {
				return err
			}
		}
		rep, err := simulator.Simulate(ctx, cl, w, cfg, 1, os.Stderr)
		if rep != nil {
			rep.Print(os.Stdout)
		}
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return err
	})
}
