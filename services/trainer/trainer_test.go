package trainer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/retrieval"
)

// writeMovieLens writes a MovieLens-100k layout whose ratings are a
// generated world's users choosing for themselves: 5 stars when the
// chosen item's utility is high, 2 otherwise.
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
	start := time.Unix(880000000, 0)
	for _, in := range w.Consumption(20000, start, Cycle, 1) {
		u, _ := strconv.Atoi(strings.TrimPrefix(in.UserID, "user-"))
		it, _ := w.Item(in.ItemID)
		rating := 2
		if w.Utility(w.Users[u], it, in.Time) > 0.5 {
			rating = 5
		}
		fmt.Fprintf(&data, "%d\t%s\t%d\t%d\n", u, strings.TrimPrefix(in.ItemID, "item-"), rating, in.Time.Unix())
	}
	os.WriteFile(filepath.Join(dir, "u.item"), []byte(items.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "u.data"), []byte(data.String()), 0o644)
	return dir
}

// TestTrainOnMovieLensAndPublish imports a MovieLens-format folder,
// evaluates the served pipeline beside the baselines, and publishes a
// version (model, metadata and retrieval index) that the model runtime
// loads.
func TestTrainOnMovieLensAndPublish(t *testing.T) {
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}
	root := t.TempDir()
	var out bytes.Buffer
	res, err := Train(context.Background(), Config{ModelRoot: root, ModelName: "ctr", Version: "ml1", MovieLens: writeMovieLens(t),
		Threshold: 4, Epochs: 2, Dim: 8}, &out)
	if err != nil {
		t.Fatalf("Train: %v\n%s", err, out.String())
	}
	for _, want := range []string{"NDCG@10", "Recall@10", "MRR@10", "coverage", "AUC", "served pipeline", "popularity", "itemknn", "ease", "published"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if res.Report.Served.AUC <= 0.5 || res.Report.Baseline("popularity").NDCG10 <= 0 {
		t.Errorf("served %v, popularity %v: want a pipeline better than chance and a baseline", res.Report.Served, res.Report.Baseline("popularity"))
	}
	dir := filepath.Join(root, "ctr", "ml1")
	meta, err := modelrt.ReadMetadata(filepath.Join(dir, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := modelrt.CheckIO(filepath.Join(dir, "model.onnx"), meta); err != nil {
		t.Errorf("published model does not match its metadata: %v", err)
	}
	for _, k := range []string{"ndcg_at_10", "recall_at_10", "mrr_at_10", "coverage", "auc", "popularity_ndcg_at_10", "itemknn_ndcg_at_10", "ease_ndcg_at_10", "signal_i2i_ndcg_at_10"} {
		if _, ok := meta.Metrics[k]; !ok {
			t.Errorf("metadata metrics lack %s: %v", k, meta.Metrics)
		}
	}
	if all := int64(res.Report.TrainItems + res.Report.TestItems); meta.Training == nil || meta.Training.Rows != all {
		t.Errorf("training span %+v, want all %d ratings", meta.Training, all)
	}
	index, err := retrieval.Read(filepath.Join(dir, retrieval.FileName))
	if err != nil {
		t.Fatalf("published retrieval index: %v", err)
	}
	if len(index.Items) != 200 || index.Neighbors == nil || index.Vectors == nil || index.Dim != 8 {
		t.Errorf("published index has %d items, neighbours %v, vectors of dim %d: want 200 items, both artifacts, dim 8", len(index.Items), index.Neighbors != nil, index.Dim)
	}
	if _, err := Train(context.Background(), Config{ModelRoot: root, ModelName: "ctr", Version: "ml1", Interactions: 100, Users: 10, Items: 10, Epochs: 1, Dim: 2}, &out); err == nil {
		t.Error("publishing ml1 twice succeeded; versions must be immutable")
	}
}

// BenchmarkTrainWorld evaluates and fits the served pipeline on the
// default generated world (1000 users, 400 items, 30,000 choices).
func BenchmarkTrainWorld(b *testing.B) {
	w := NewWorld(1, 1000, 400)
	d := w.Data(w.Consumption(30000, time.Now().Add(-Cycle), Cycle, 1))
	for b.Loop() {
		start := time.Now()
		if _, err := EvaluatePipeline(d, RankerMetadata("ctr", "bench"), DefaultPipeline(), io.Discard); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/evaluation")
	}
	b.ReportMetric(0, "ns/op")
}
