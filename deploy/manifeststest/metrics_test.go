package manifeststest

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	promql "github.com/prometheus/prometheus/promql/parser"
	"sigs.k8s.io/yaml"
)

// registeredMetrics returns the metric names the Go sources under libs/
// and services/ register with the Prometheus client: Namespace, Subsystem
// and Name of every prometheus.*Opts literal outside tests, with the
// _bucket, _sum and _count series of histograms and summaries. (The
// metrics are created inside each service's Run, so reading the code is
// the one way to know them all without running every service and
// observing every series.)
func registeredMetrics(t testing.TB) map[string]bool {
	t.Helper()
	suffixes := map[string][]string{"CounterOpts": {""}, "GaugeOpts": {""}, "HistogramOpts": {"_bucket", "_sum", "_count"}, "SummaryOpts": {"", "_sum", "_count"}}
	names := map[string]bool{}
	for _, dir := range []string{"libs", "services"} {
		err := filepath.WalkDir(filepath.Join(repoRoot(t), dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), p, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.CompositeLit)
				if !ok {
					return true
				}
				s, ok := lit.Type.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := s.X.(*ast.Ident); !ok || x.Name != "prometheus" || suffixes[s.Sel.Name] == nil {
					return true
				}
				parts := map[string]string{}
				for _, e := range lit.Elts {
					if kv, ok := e.(*ast.KeyValueExpr); ok {
						if b, ok := kv.Value.(*ast.BasicLit); ok && b.Kind == token.STRING {
							parts[fmt.Sprint(kv.Key)], _ = strconv.Unquote(b.Value)
						} else if k := fmt.Sprint(kv.Key); k == "Name" || k == "Namespace" || k == "Subsystem" {
							t.Errorf("%s: prometheus.%s %s is not a string literal: the metric checks cannot see it", p, s.Sel.Name, k)
						}
					}
				}
				var full []string
				for _, k := range []string{"Namespace", "Subsystem", "Name"} {
					if parts[k] != "" {
						full = append(full, parts[k])
					}
				}
				for _, suffix := range suffixes[s.Sel.Name] {
					names[strings.Join(full, "_")+suffix] = true
				}
				return true
			})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(names) < 20 {
		t.Fatalf("found %d registered metric names under libs/ and services/: the scan is broken", len(names))
	}
	return names
}

// grafanaVariable is a Grafana interval variable ($__rate_interval,
// $__range, ...), which PromQL does not know.
var grafanaVariable = regexp.MustCompile(`\$__\w+`)

// promqlMetrics returns the metric names a PromQL expression selects,
// parsed by Prometheus's own parser.
func promqlMetrics(expr string) ([]string, error) {
	e, err := promql.NewParser(promql.Options{}).ParseExpr(grafanaVariable.ReplaceAllString(expr, "5m"))
	if err != nil {
		return nil, err
	}
	var names []string
	promql.Inspect(e, func(n promql.Node, _ []promql.Node) error {
		if vs, ok := n.(*promql.VectorSelector); ok {
			names = append(names, vs.Name)
		}
		return nil
	})
	return names, nil
}

// TestGrafanaDashboard: every dashboard has a uid, its panels query
// provisioned data sources, every expression parses and selects only
// metrics the services register, and the panels the platform needs are
// there.
func TestGrafanaDashboard(t *testing.T) {
	registered := registeredMetrics(t)
	uids := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), "deploy/compose/grafana/provisioning/datasources/*.yaml"))
	for _, f := range files {
		var doc struct{ Datasources []struct{ UID string } }
		b, err := os.ReadFile(f)
		if err == nil {
			err = yaml.Unmarshal(b, &doc)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range doc.Datasources {
			uids[d.UID] = d.UID != ""
		}
	}
	files, _ = filepath.Glob(filepath.Join(repoRoot(t), "deploy/compose/grafana/dashboards/*.json"))
	if len(files) == 0 || len(uids) == 0 {
		t.Fatal("no dashboard or no provisioned data source")
	}
	var exprs []string
	for _, f := range files {
		var dash map[string]any
		b, err := os.ReadFile(f)
		if err == nil {
			err = json.Unmarshal(b, &dash)
		}
		if err != nil || dash["uid"] == "" || dash["uid"] == nil {
			t.Errorf("%s: %v, uid %v: want a dashboard with a uid (links break without one)", f, err, dash["uid"])
		}
		var visit func(v any, where string)
		visit = func(v any, where string) {
			switch v := v.(type) {
			case map[string]any:
				if title, ok := v["title"].(string); ok {
					where = title
				}
				if ds, ok := v["datasource"].(map[string]any); ok && !uids[fmt.Sprint(ds["uid"])] {
					t.Errorf("%s: panel %q: data source %v is not provisioned", filepath.Base(f), where, ds["uid"])
				}
				if e, ok := v["expr"].(string); ok {
					exprs = append(exprs, e)
					names, err := promqlMetrics(e)
					if err != nil || len(names) == 0 {
						t.Errorf("%s: panel %q: %q selects no metric (%v)", filepath.Base(f), where, e, err)
					}
					for _, n := range names {
						if !registered[n] {
							t.Errorf("%s: panel %q: metric %s is registered by no service (a typo, or a renamed metric)", filepath.Base(f), where, n)
						}
					}
				}
				for _, k := range sortedKeys(v) {
					visit(v[k], where)
				}
			case []any:
				for _, e := range v {
					visit(e, where)
				}
			}
		}
		visit(dash, "")
	}
	needs := map[string][]string{
		"rank latency":                       {"recsys_rank_seconds_bucket"},
		"inference time per model version":   {"recsys_model_inference_seconds", "version"},
		"feature freshness":                  {"recsys_feature_freshness_seconds"},
		"consumer lag":                       {"recsys_featurecompute_consumer_lag"},
		"per-arm CTR (clicks / impressions)": {"recsys_experiment_events_total", `type="click"`, `type="impression"`, "arm"},
	}
	for what, parts := range needs {
		if !slices.ContainsFunc(exprs, func(e string) bool {
			return !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(e, p) })
		}) {
			t.Errorf("no panel shows %s", what)
		}
	}
	if _, err := promqlMetrics(`sum(rate(x[5m])`); err == nil {
		t.Error("promqlMetrics(an unbalanced expression) = nil error, want one")
	}
}
