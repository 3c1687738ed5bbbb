package manifeststest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
)

// TestSetCanaryWeight runs deploy/set-canary-weight.sh on copies of the
// istio files: a valid weight rewrites every ranking-canary route (v2 gets
// the weight, v1 the rest), and a bad one changes nothing.
func TestSetCanaryWeight(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash on PATH: the script needs it")
	}
	root := repoRoot(t)
	script := filepath.Join(root, "deploy", "set-canary-weight.sh")
	dir := t.TempDir()
	var files []string
	for _, f := range []string{"ranking.yaml", "gateway.yaml", "feedback.yaml"} {
		data, err := os.ReadFile(filepath.Join(root, istioDir, f))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Join(dir, f))
		if err := os.WriteFile(files[len(files)-1], data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	noCanary := files[2] // feedback.yaml has no ranking-canary route
	files = files[:2]
	run := func(args ...string) error {
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		out, err := cmd.CombinedOutput()
		t.Logf("set-canary-weight.sh %s: %s", strings.Join(args, " "), out)
		return err
	}

	for _, w := range []string{"25", "0", "100", "050"} {
		if err := run(append([]string{w}, files...)...); err != nil {
			t.Fatalf("set-canary-weight.sh %s: %v", w, err)
		}
		want := map[string]string{"25": "v1=75 v2=25", "0": "v1=100 v2=0", "100": "v1=0 v2=100", "050": "v1=50 v2=50"}[w]
		for _, f := range files {
			if got := canaryOf(t, f); got != want {
				t.Errorf("after set-canary-weight.sh %s, %s: ranking-canary %s, want %s", w, filepath.Base(f), got, want)
			}
		}
	}

	before := map[string][]byte{}
	for _, f := range append(files, noCanary) {
		before[f], _ = os.ReadFile(f)
	}
	for _, bad := range [][]string{{"101"}, {"-5"}, {"5.5"}, {"abc"}, {""}, {}, {"5", files[0], noCanary}} {
		args := bad
		if len(bad) == 1 {
			args = append(append([]string{}, bad...), files...)
		}
		if err := run(args...); err == nil {
			t.Errorf("set-canary-weight.sh %q succeeded, want a failure", bad)
		}
	}
	for _, f := range append(files, noCanary) {
		if after, _ := os.ReadFile(f); string(after) != string(before[f]) {
			t.Errorf("%s changed after failed runs", filepath.Base(f))
		}
	}
}

// canaryOf reads the weights of the ranking-canary route of every
// VirtualService in a file, which must agree.
func canaryOf(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, o := range loadYAML(t, file, data) {
		vs, ok := o.typed.(*istionetworking.VirtualService)
		if !ok {
			continue
		}
		if r := routeNamed(vs, "ranking-canary"); r != nil {
			got = canaryWeights(r)
		}
	}
	if got == "" {
		t.Fatalf("%s: no ranking-canary route", file)
	}
	return got
}
