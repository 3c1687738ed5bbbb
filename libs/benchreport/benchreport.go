// Package benchreport turns `go test -bench` output into the table of
// budgets (docs/architecture.md, "Budgets"): each measured value, its target, and the bare
// part it is compared with in the same run.
package benchreport

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Results maps benchmark name (without the -N suffix) → unit → value.
type Results map[string]map[string]float64

// Parse reads benchmark lines ("BenchmarkX-2  300  1.5 unit  2.5 unit2 ...").
func Parse(r io.Reader) (Results, error) {
	res := Results{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			name = name[:i]
		}
		m := res[name]
		if m == nil {
			m = map[string]float64{}
			res[name] = m
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			m[f[i+1]] = v
		}
	}
	return res, sc.Err()
}

// Budget is one line of the table.
type Budget struct {
	What      string
	Bench     string
	Unit      string  // the measured value
	Max, Min  float64 // the target (0: none)
	BareUnit  string  // the bare part measured in the same run, if any
	BareLabel string
}

// Budgets are the platform's (docs/architecture.md, "Budgets"), as the benchmarks report them.
var Budgets = []Budget{
	{What: "Rank p99, 500 candidates, shipped model, gRPC (ms)", Bench: "BenchmarkRank500", Unit: "rank-p99-ms", Max: 10, BareUnit: "bare-ort-p99-ms", BareLabel: "bare ONNX Runtime p99 (ms)"},
	{What: "Redis round trips per Rank", Bench: "BenchmarkRank500", Unit: "redis-trips/req", Max: 2},
	{What: "inference / bare ONNX Runtime, same batch", Bench: "BenchmarkRank500", Unit: "inference/bare-ort", Max: 1.3},
	{What: "500-item feature read, columns / raw pipelined HGETALL (p99)", Bench: "BenchmarkRead500Items", Unit: "ratio-p99", Max: 1.5, BareUnit: "raw-p99-µs", BareLabel: "raw pipeline p99 (µs)"},
	{What: "500 items over the item service in columns / raw (p99)", Bench: "BenchmarkItemTransport", Unit: "columns/raw-p99", BareUnit: "raw-p99-µs", BareLabel: "raw pipeline p99 (µs)"},
	{What: "the same, one FeatureSet per item / raw (p99)", Bench: "BenchmarkItemTransport", Unit: "sets/raw-p99"},
	{What: "click to feature visible p99 (ms)", Bench: "BenchmarkClickToVisible", Unit: "p99-ms", Max: 1000},
	{What: "feedback ingestion end to end (events/s)", Bench: "BenchmarkPipeline", Unit: "pipeline-events/s", Min: 20000, BareUnit: "raw-kafka-go-events/s", BareLabel: "raw kafka-go produce+consume (events/s)"},
	{What: "Redis CPU per applied event (µs), one Redis", Bench: "BenchmarkApplyEvents", Unit: "redis-cpu-µs/event"},
	{What: "evaluate + fit the served pipeline, demo world (s)", Bench: "BenchmarkTrainWorld", Unit: "s/evaluation", Max: 60},
	{What: "retrieval p99, 100k items, long tail (ms)", Bench: "BenchmarkRetrieve100k/long-tail", Unit: "p99-ms", Max: 2},
	{What: "retrieval p99, 100k items, equal norms (worst case)", Bench: "BenchmarkRetrieve100k/equal-norms", Unit: "p99-ms"},
	{What: "Recommend QPS, retrieval + 350 ranked, 4 gRPC clients", Bench: "BenchmarkRecommendQPS", Unit: "recommend-qps"},
	{What: "Recommend p99 under that load (ms)", Bench: "BenchmarkRecommendQPS", Unit: "recommend-p99-ms", Max: 20, BareUnit: "grpc-echo-p99-ms", BareLabel: "grpc-go round trip p99 (ms)"},
}

// Curve is a benchmark reported per sub-benchmark (Rank latency by
// candidate count).
var Curve = struct{ Bench, Unit string }{"BenchmarkRankCandidates", "p99-ms"}

// Write prints the table and returns how many budgets were missed or not
// measured.
func Write(w io.Writer, res Results) int {
	bad := 0
	fmt.Fprintf(w, "%-54s %12s %10s %-6s %s\n", "budget", "measured", "target", "", "bare part, same run")
	for _, b := range Budgets {
		v, ok := res[b.Bench][b.Unit]
		target, verdict := "", "ok"
		switch {
		case b.Max > 0:
			target = fmt.Sprintf("≤ %g", b.Max)
			if v > b.Max {
				verdict = "MISSED"
			}
		case b.Min > 0:
			target = fmt.Sprintf("≥ %g", b.Min)
			if v < b.Min {
				verdict = "MISSED"
			}
		}
		measured := fmt.Sprintf("%.4g", v)
		if !ok {
			measured, verdict = "-", "NOT RUN"
		}
		if verdict != "ok" {
			bad++
		}
		bare := ""
		if bv, ok := res[b.Bench][b.BareUnit]; ok && b.BareUnit != "" {
			bare = fmt.Sprintf("%s %.4g", b.BareLabel, bv)
		}
		fmt.Fprintf(w, "%-54s %12s %10s %-6s %s\n", b.What, measured, target, verdict, bare)
	}
	var points []string
	for name, m := range res {
		if n, ok := strings.CutPrefix(name, Curve.Bench+"/"); ok {
			points = append(points, fmt.Sprintf("%s:%.3g", n, m[Curve.Unit]))
		}
	}
	if len(points) > 0 {
		slices.SortFunc(points, func(a, b string) int {
			x, _ := strconv.Atoi(strings.SplitN(a, ":", 2)[0])
			y, _ := strconv.Atoi(strings.SplitN(b, ":", 2)[0])
			return x - y
		})
		fmt.Fprintf(w, "Rank p99 (ms) by candidates: %s\n", strings.Join(points, "  "))
	}
	return bad
}
