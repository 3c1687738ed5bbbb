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

// TestFromMovieLensLayouts reads the same ratings from a folder in each
// MovieLens layout as distributed, and names the layouts when a folder
// has none.
func TestFromMovieLensLayouts(t *testing.T) {
	layouts := map[string]map[string]string{
		"ml-100k": {
			"u.item": "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n2|Heat (1995)|01-Jan-1995||http://y|0|1|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0\n3|Caf\xe9 (1996)|01-Jan-1996||http://z|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\n",
			"u.data": "1\t1\t5\t881250949\n1\t2\t3\t881250950\n2\t1\t4\t881250951\n",
		},
		"ml-1m": {
			"movies.dat":  "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Heat (1995)::Action\n3::Caf\xe9 (1996)::Drama\n",
			"ratings.dat": "1::1::5::881250949\n1::2::3::881250950\n2::1::4::881250951\n",
		},
		"ml-latest": {
			"movies.csv":  "movieId,title,genres\n1,Toy Story (1995),Animation\n2,Heat (1995),Action\n3,Café (1996),Drama\n",
			"ratings.csv": "userId,movieId,rating,timestamp\n1,1,5.0,881250949\n1,2,3.0,881250950\n2,1,4.0,881250951\n",
		},
	}
	for name, files := range layouts {
		dir := t.TempDir()
		for f, body := range files {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		d, err := FromMovieLens(dir, 4, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		relevant := 0
		for _, evs := range d.ByUser {
			for _, e := range evs {
				if e.Relevant {
					relevant++
				}
			}
		}
		if len(d.Users) != 2 || len(d.Items) != 3 || relevant != 2 {
			t.Errorf("%s: %d users, %d items, %d relevant ratings; want 2, 3 (the whole catalogue) and 2", name, len(d.Users), len(d.Items), relevant)
		}
	}
	if _, err := FromMovieLens(t.TempDir(), 4, io.Discard); err == nil || !strings.Contains(err.Error(), "ratings.dat + movies.dat") {
		t.Errorf("an empty folder: err = %v, want one naming the layouts", err)
	}
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
