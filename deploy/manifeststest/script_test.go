package manifeststest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSetCanaryWeight runs deploy/set-canary-weight.sh (the manual model
// canary) on a copy of the shipped experiment: a valid weight gives
// treatment that share and control the rest, the result is an experiment
// ranking accepts, and a bad weight or file changes nothing and leaves no
// temporary file behind.
func TestSetCanaryWeight(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash on PATH: the script needs it")
	}
	root := repoRoot(t)
	script := filepath.Join(root, "deploy", "set-canary-weight.sh")
	dir := t.TempDir()
	shipped, err := os.ReadFile(filepath.Join(root, "deploy", "base", "experiment.json"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "experiment.json")
	if err := os.WriteFile(file, shipped, 0o644); err != nil {
		t.Fatal(err)
	}
	reversed := filepath.Join(dir, "reversed.json")
	os.WriteFile(reversed, []byte(`{"id": "x", "salt": "s", "arms": [
  {"name": "treatment", "model_version": "b", "weight": 5},
  {"name": "control", "model_version": "a", "weight": 95}]}`), 0o644)
	tmp := t.TempDir()
	run := func(args ...string) error {
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		out, err := cmd.CombinedOutput()
		t.Logf("set-canary-weight.sh %s: %s", strings.Join(args, " "), out)
		return err
	}

	for w, want := range map[string][2]float64{"25": {75, 25}, "1": {99, 1}, "99": {1, 99}, "05": {95, 5}} {
		if err := run(w, file); err != nil {
			t.Fatalf("set-canary-weight.sh %s: %v", w, err)
		}
		data, _ := os.ReadFile(file)
		exp, err := parseExperiment(string(data))
		if err != nil {
			t.Fatalf("after set-canary-weight.sh %s: %v", w, err)
		}
		c, _ := exp.Arm("control")
		tr, _ := exp.Arm("treatment")
		if c.Weight != want[0] || tr.Weight != want[1] || exp.Arms[0].Name != "control" {
			t.Errorf("after set-canary-weight.sh %s: arms %+v, want control %v then treatment %v", w, exp.Arms, want[0], want[1])
		}
	}

	before := map[string][]byte{}
	for _, f := range []string{file, reversed} {
		before[f], _ = os.ReadFile(f)
	}
	for _, bad := range [][]string{{"0", file}, {"100", file}, {"-5", file}, {"5.5", file}, {"abc", file}, {"", file}, {}, {"5", reversed}, {"5", filepath.Join(dir, "missing.json")}, {"5", file, file}} {
		if err := run(bad...); err == nil {
			t.Errorf("set-canary-weight.sh %q succeeded, want a failure", bad)
		}
	}
	for f, b := range before {
		if after, _ := os.ReadFile(f); string(after) != string(b) {
			t.Errorf("%s changed after failed runs", filepath.Base(f))
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("set-canary-weight.sh left %d temporary file(s) behind", len(left))
	}
}
