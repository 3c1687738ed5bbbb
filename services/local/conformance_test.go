package local

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The conformance run (docs/architecture.md, "Validation declared in the
// contract"): every check schemathesis has, a fixed seed, and at least 50
// examples per operation.
const (
	conformanceSeed     = "20261201"
	conformanceExamples = "50"
)

// TestConformance runs schemathesis, the property-based API tester
// (pinned in tools/requirements-conformance.txt; make conformance-venv
// installs it into .cache/venv-conformance), against the OpenAPI document
// of every service that publishes one, on the whole platform started
// here with embedded Redis and Kafka. It fails on any finding: a response
// the document does not describe, a schema-valid request refused, a
// schema-invalid one accepted, a method the path lacks answered other
// than 405, a server error. Each service's report (text and JUnit) is
// kept under .cache/conformance/ for CI. Without schemathesis it skips
// under -short and fails otherwise.
func TestConformance(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	st := filepath.Join(root, ".cache", "venv-conformance", "bin", "schemathesis")
	if _, err := os.Stat(st); err != nil {
		if testing.Short() {
			t.Skipf("schemathesis is not installed (%s): `make conformance-venv` installs it", st)
		}
		t.Fatalf("schemathesis is not installed (%s): run `make conformance-venv` (make test does)", st)
	}
	out := filepath.Join(root, ".cache", "conformance")
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}

	// A model one feature wide: every length of Predict's input_data is
	// then whole rows, a rule that depends on the model and so no schema
	// can state.
	models := ctrModel(t)
	svc := startPlatform(t, "-ranking.model-root="+models)
	names := make([]string, 0, len(svc))
	for name := range svc {
		names = append(names, name)
	}
	slices.Sort(names)

	tested := 0
	for _, name := range names {
		base := fmt.Sprintf("http://127.0.0.1:%d", svc[name].http)
		waitReady(t, base)
		resp, err := http.Get(base + "/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			continue // no REST API of its own (the web edge, featurecompute)
		}
		tested++
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			dir := filepath.Join(out, name)
			cmd := exec.CommandContext(ctx, st, "run", base+"/openapi.json", "--url", base,
				"--checks", "all", "--seed", conformanceSeed, "--max-examples", conformanceExamples,
				"--workers", "1", "--continue-on-failure", "--generation-database", "none", "--no-color",
				"--report", "junit", "--report-dir", dir)
			cmd.Dir = out
			cmd.Env = append(os.Environ(),
				"SCHEMATHESIS_HOOKS=conformance_hooks",
				"PYTHONPATH="+filepath.Join(root, "services", "local", "testdata"),
				"PYTHONDONTWRITEBYTECODE=1")
			var buf bytes.Buffer
			cmd.Stdout, cmd.Stderr = &buf, &buf
			runErr := cmd.Run()
			if err := os.WriteFile(filepath.Join(out, name+".txt"), buf.Bytes(), 0o644); err != nil {
				t.Error(err)
			}
			summary := buf.String()
			if i := strings.LastIndex(summary, "SUMMARY"); i >= 0 {
				summary = summary[i:]
			}
			if runErr != nil {
				t.Errorf("schemathesis against %s: %v; the whole report is in %s\n%s", name, runErr, filepath.Join(out, name+".txt"), tail(buf.String(), 8000))
				return
			}
			t.Logf("schemathesis against %s: %s", name, summary)
		})
	}
	if tested < 4 {
		t.Errorf("schemathesis tested %d services, want every service with a REST API (4)", tested)
	}
}

// waitReady waits for /readyz (ranking is ready once its model is warm).
func waitReady(t *testing.T, base string) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	t.Fatalf("%s/readyz did not answer 200 within 30 s", base)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// repoRoot is the folder with go.work above the test's folder.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.work above the test's folder")
		}
		dir = parent
	}
}
