package benchreport

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseAndWrite(t *testing.T) {
	out := `goos: linux
BenchmarkRank500-2   	     300	         0.01200 bare-ort-p99-ms	         0.4167 inference/bare-ort	         4.730 rank-p50-ms	         12.5 rank-p99-ms	         2.000 redis-trips/req	         0.1270 row-assembly-p50-ms
BenchmarkPipeline-2 1 22178 pipeline-events/s 0.065 ratio 339003 raw-kafka-go-events/s
BenchmarkRankCandidates/1000-2 100 9.4 p50-ms 14.3 p99-ms
BenchmarkRankCandidates/50-2 100 0.7 p50-ms 2.2 p99-ms
PASS`
	res, err := Parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if res["BenchmarkRank500"]["rank-p99-ms"] != 12.5 || res["BenchmarkPipeline"]["raw-kafka-go-events/s"] != 339003 {
		t.Fatalf("Parse = %v", res)
	}
	var w bytes.Buffer
	bad := Write(&w, res)
	table := w.String()
	if !strings.Contains(table, "MISSED") || !strings.Contains(table, "NOT RUN") || !strings.Contains(table, "raw kafka-go produce+consume (events/s) 3.39e+05") {
		t.Errorf("table:\n%s", table)
	}
	// Rank p99 missed; feature read, the two transport lines, click, Redis
	// per event, training, the two retrieval lines and the two Recommend
	// lines not run.
	if bad != 11 {
		t.Errorf("Write counted %d bad budgets, want 11:\n%s", bad, table)
	}
	if !strings.Contains(table, "by candidates: 50:2.2  1000:14.3") {
		t.Errorf("the latency curve is missing or out of order:\n%s", table)
	}
}
