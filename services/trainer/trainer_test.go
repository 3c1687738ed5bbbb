package trainer

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recsys/recsys/libs/modelrt"
)

// writeMovieLens writes a MovieLens-100k layout whose ratings follow a
// generated world's tastes.
func writeMovieLens(t *testing.T) string {
	t.Helper()
	w := NewWorld(9, 300, 200)
	dir := t.TempDir()
	var items, data strings.Builder
	for i, it := range w.Items {
		flags := make([]string, 19)
		for g := range flags {
			flags[g] = "0"
		}
		flags[1+i%18] = "1"
		fmt.Fprintf(&items, "%s|%s|01-Jan-1995||http://x|%s\n", strings.TrimPrefix(it.ID, "item-"), it.Title, strings.Join(flags, "|"))
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for n := range 20000 {
		u := w.Users[rng.IntN(len(w.Users))]
		it := w.Items[rng.IntN(len(w.Items))]
		rating := 2
		if rng.Float64() < w.ClickProbability(u, it, 0)*3 {
			rating = 5
		}
		fmt.Fprintf(&data, "%s\t%s\t%d\t%d\n", strings.TrimPrefix(u.ID, "user-"), strings.TrimPrefix(it.ID, "item-"), rating, 880000000+n*60)
	}
	os.WriteFile(filepath.Join(dir, "u.item"), []byte(items.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "u.data"), []byte(data.String()), 0o644)
	return dir
}

// TestTrainOnMovieLensAndPublish imports a MovieLens-format folder, trains,
// evaluates both the model and the baseline, and publishes a version that
// the model runtime loads.
func TestTrainOnMovieLensAndPublish(t *testing.T) {
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}
	root := t.TempDir()
	var out bytes.Buffer
	res, err := Train(context.Background(), Config{ModelRoot: root, ModelName: "ctr", Version: "ml1", MovieLens: writeMovieLens(t),
		Threshold: 4, Negatives: 4, Epochs: 2, Dim: 8, MaxSamples: 1_000_000}, &out)
	if err != nil {
		t.Fatalf("Train: %v\n%s", err, out.String())
	}
	for _, want := range []string{"AUC", "NDCG@10", "Recall@10", "model", "popularity", "published"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if res.Scores.AUC <= 0.5 || res.Popularity.NDCG10 <= 0 {
		t.Errorf("metrics %+v / %+v: want a model better than chance and a baseline", res.Scores, res.Popularity)
	}
	meta, err := modelrt.ReadMetadata(filepath.Join(root, "ctr", "ml1", "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := modelrt.CheckIO(filepath.Join(root, "ctr", "ml1", "model.onnx"), meta); err != nil {
		t.Errorf("published model does not match its metadata: %v", err)
	}
	if meta.Metrics["ndcg_at_10"] == 0 || meta.Metrics["popularity_ndcg_at_10"] == 0 || meta.Training == nil {
		t.Errorf("metadata metrics %v, training %v: want both models' metrics and the span", meta.Metrics, meta.Training)
	}
	if _, err := Train(context.Background(), Config{ModelRoot: root, ModelName: "ctr", Version: "ml1", Sessions: 100, Users: 10, Items: 10, Epochs: 1, Dim: 2}, &out); err == nil {
		t.Error("publishing ml1 twice succeeded; versions must be immutable")
	}
}

func BenchmarkTrain100kRows(b *testing.B) {
	w := NewWorld(1, 2000, 500)
	meta := DefaultMetadata("ctr", "bench")
	ex := Examples(meta, w.Catalog(), w.Interactions(10000, 10, time.Now().Add(-48*time.Hour), 48*time.Hour, 1))
	o := DefaultFit()
	for b.Loop() {
		start := time.Now()
		if _, err := Fit(meta, ex, o, nil); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/100k-rows-3-epochs")
	}
	b.ReportMetric(0, "ns/op")
}
