package manifeststest

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	knservingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/recsys/recsys/libs/config"
	"github.com/recsys/recsys/services/featurecompute"
	"github.com/recsys/recsys/services/feedback"
	"github.com/recsys/recsys/services/ingest"
	"github.com/recsys/recsys/services/itemfeatures"
	"github.com/recsys/recsys/services/ranking"
	"github.com/recsys/recsys/services/trainer"
	"github.com/recsys/recsys/services/userfeatures"
	"github.com/recsys/recsys/services/web"
)

// binaries maps an image's name (recsys/<name>) to the flags of the binary
// it runs, registered by the service package itself.
var binaries = map[string]func(*flag.FlagSet){
	"userfeatures":   func(fs *flag.FlagSet) { new(userfeatures.Config).RegisterFlags(fs) },
	"itemfeatures":   func(fs *flag.FlagSet) { new(itemfeatures.Config).RegisterFlags(fs) },
	"ranking":        func(fs *flag.FlagSet) { new(ranking.Config).RegisterFlags(fs) },
	"feedback":       func(fs *flag.FlagSet) { new(feedback.Config).RegisterFlags(fs) },
	"featurecompute": func(fs *flag.FlagSet) { new(featurecompute.Config).RegisterFlags(fs) },
	"web":            func(fs *flag.FlagSet) { new(web.Config).RegisterFlags(fs) },
	"trainer":        func(fs *flag.FlagSet) { new(trainer.Config).RegisterFlags(fs) },
	"ingest":         func(fs *flag.FlagSet) { new(ingest.Config).RegisterFlags(fs) },
}

// flagSet is the flag set the binary parses: serving.Main adds -log-level
// to every binary, then the service's own flags.
func flagSet(binary string) (*flag.FlagSet, error) {
	register, ok := binaries[binary]
	if !ok {
		return nil, fmt.Errorf("image recsys/%s is no recsys binary (known: %v)", binary, sortedKeys(binaries))
	}
	fs := flag.NewFlagSet(binary, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("log-level", "info", "")
	register(fs)
	return fs, nil
}

// pendingFlags are flags an overlay passes before the binary registers
// them: build -> binary -> flag -> why. Their check is skipped, saying so,
// until the binary registers the flag; from then on it runs like any other.
// None is pending now: -execution-provider landed with the ranking service.
var pendingFlags = map[string]map[string]map[string]string{}

// utilityImages are the images, other than the recsys binaries, that a
// manifest may run (Argo script templates), with why.
var utilityImages = map[string]string{
	"python": "the training workflow's evaluate and publish steps: a few lines over metadata.json",
}

// workload is one pod template of a build, with its containers as they
// will run.
type workload struct {
	owner          string // "Deployment ranking"
	labels         map[string]string
	annotations    map[string]string
	podSC          *corev1.PodSecurityContext
	containers     []corev1.Container
	volumes        []corev1.Volume
	serviceAccount string
	pod            *corev1.PodSpec   // nil for Argo templates
	serving        bool              // a long-running server (needs probes)
	params         map[string]string // Argo workflow parameters, for {{workflow.parameters.x}}
	script         bool              // an Argo script template: a utility image, not a recsys binary
}

func workloads(t testing.TB, objs []object) []workload {
	t.Helper()
	var out []workload
	podWorkload := func(owner string, meta map[string]string, ann map[string]string, spec *corev1.PodSpec, serving bool) workload {
		return workload{owner: owner, labels: meta, annotations: ann, podSC: spec.SecurityContext,
			containers: append(slices.Clone(spec.InitContainers), spec.Containers...), volumes: spec.Volumes,
			serviceAccount: spec.ServiceAccountName, pod: spec, serving: serving}
	}
	for _, o := range objs {
		switch v := o.typed.(type) {
		case *appsv1.Deployment:
			tpl := &v.Spec.Template
			out = append(out, podWorkload("Deployment "+v.Name, tpl.Labels, tpl.Annotations, &tpl.Spec, true))
		case *batchv1.CronJob:
			tpl := &v.Spec.JobTemplate.Spec.Template
			out = append(out, podWorkload("CronJob "+v.Name, tpl.Labels, tpl.Annotations, &tpl.Spec, false))
		case *batchv1.Job:
			tpl := &v.Spec.Template
			out = append(out, podWorkload("Job "+v.Name, tpl.Labels, tpl.Annotations, &tpl.Spec, false))
		case *knservingv1.Service:
			tpl := &v.Spec.Template
			out = append(out, podWorkload("Knative Service "+v.Name, tpl.Labels, tpl.Annotations, &tpl.Spec.PodSpec, true))
		case *wfv1.WorkflowTemplate:
			ws, err := argoWorkloads("WorkflowTemplate "+v.Name, &v.Spec)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ws...)
		case *wfv1.Workflow:
			ws, err := argoWorkloads("Workflow "+v.Name, &v.Spec)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ws...)
		}
	}
	return out
}

// argoWorkloads returns one workload per container or script template,
// with the spec's templateDefaults merged in as Argo's controller does it
// (a strategic merge of the template over the defaults, keeping the
// template's type).
func argoWorkloads(owner string, spec *wfv1.WorkflowSpec) ([]workload, error) {
	params := map[string]string{}
	for _, p := range spec.Arguments.Parameters {
		if p.Value != nil {
			params[p.Name] = p.Value.String()
		}
	}
	var out []workload
	for _, tpl := range spec.Templates {
		if tpl.Container == nil && tpl.Script == nil {
			continue
		}
		merged := tpl.DeepCopy()
		if spec.TemplateDefaults != nil {
			defaults, err := json.Marshal(spec.TemplateDefaults)
			if err != nil {
				return nil, err
			}
			own, err := json.Marshal(tpl)
			if err != nil {
				return nil, err
			}
			result, err := strategicpatch.StrategicMergePatch(defaults, own, wfv1.Template{})
			if err != nil {
				return nil, fmt.Errorf("%s template %s: merge templateDefaults: %w", owner, tpl.Name, err)
			}
			merged = &wfv1.Template{}
			if err := json.Unmarshal(result, merged); err != nil {
				return nil, err
			}
			merged.SetType(tpl.GetType())
		}
		var c corev1.Container
		if merged.Container != nil {
			c = *merged.Container
		} else {
			c = merged.Script.Container
		}
		if c.Name == "" {
			c.Name = "main" // Argo's name for a template's container
		}
		var podLabels map[string]string
		if spec.PodMetadata != nil {
			podLabels = spec.PodMetadata.Labels
		}
		out = append(out, workload{owner: owner + " template " + tpl.Name, podSC: spec.SecurityContext, labels: podLabels,
			containers: []corev1.Container{c}, volumes: spec.Volumes, serviceAccount: spec.ServiceAccountName, params: params,
			script: merged.Script != nil})
	}
	return out, nil
}

// binaryOf is the binary an image runs: the last element of its name, as
// in recsys/ranking:0.1.0-cuda.
func binaryOf(image string) string {
	image = imageName(image)
	return image[strings.LastIndex(image, "/")+1:]
}

// imageName strips an image's tag and digest.
func imageName(image string) string {
	image, _, _ = strings.Cut(image, "@")
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		image = image[:i]
	}
	return image
}

var workflowParam = regexp.MustCompile(`\{\{workflow\.parameters\.([A-Za-z0-9_-]+)\}\}`)

// checkFlags parses a container's args and RECSYS_* environment the way
// the binary will (libs/config: environment, then args) and reports what
// the binary would reject or silently ignore.
//
// entrypoint is the command the container must name: nil where the image's
// own ENTRYPOINT runs (Kubernetes pods), the image's ENTRYPOINT where the
// runner must be told it (Argo Workflows' executor does not look it up
// without registry access).
func checkFlags(fs *flag.FlagSet, c corev1.Container, entrypoint []string, resolve func(*corev1.ConfigMapKeySelector) (string, error), params map[string]string) []error {
	var errs []error
	switch {
	case entrypoint == nil && len(c.Command) > 0:
		errs = append(errs, fmt.Errorf("command %q replaces the image's entrypoint (the binary); pass flags as args", c.Command))
	case entrypoint != nil && !slices.Equal(c.Command, entrypoint):
		errs = append(errs, fmt.Errorf("command %q, want the image's ENTRYPOINT %q: Argo's executor runs command and args, and asks the registry when command is missing", c.Command, entrypoint))
	}
	if len(c.EnvFrom) > 0 {
		errs = append(errs, errors.New("envFrom hides which flags the environment sets; name each RECSYS_* variable"))
	}
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, "RECSYS_") {
			continue
		}
		var f *flag.Flag
		fs.VisitAll(func(g *flag.Flag) {
			if config.EnvName(g.Name) == e.Name {
				f = g
			}
		})
		if f == nil {
			errs = append(errs, fmt.Errorf("env %s sets no flag of %s (the binary ignores it)", e.Name, fs.Name()))
			continue
		}
		value := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.ConfigMapKeyRef == nil {
				continue // resolved by the cluster (fieldRef, secrets): nothing to parse here
			}
			v, err := resolve(e.ValueFrom.ConfigMapKeyRef)
			if err != nil {
				errs = append(errs, fmt.Errorf("env %s: %w", e.Name, err))
				continue
			}
			value = v
		}
		if err := f.Value.Set(value); err != nil {
			errs = append(errs, fmt.Errorf("env %s=%q: -%s rejects it: %w", e.Name, value, f.Name, err))
		}
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		// An undefined parameter is Argo's own validation's to report
		// (TestArgoValidates); here it parses as empty.
		args[i] = workflowParam.ReplaceAllStringFunc(a, func(m string) string {
			return params[workflowParam.FindStringSubmatch(m)[1]]
		})
	}
	if err := fs.Parse(args); err != nil {
		errs = append(errs, fmt.Errorf("args %q: %w", args, err))
	} else if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("args %q: the binary ignores the positional arguments %q", args, fs.Args()))
	}
	return errs
}

// imageEntrypoint is the ENTRYPOINT of the final stage of the binary's
// Dockerfile (services/<binary>/Dockerfile).
func imageEntrypoint(root, binary string) ([]string, error) {
	df, err := readDockerfile(root, filepath.Join("services", binary, "Dockerfile"))
	if err != nil {
		return nil, err
	}
	if len(df.stages) == 0 {
		return nil, fmt.Errorf("services/%s/Dockerfile: no stage", binary)
	}
	last := df.stages[len(df.stages)-1]
	if len(last.entrypoint) == 0 {
		return nil, fmt.Errorf("services/%s/Dockerfile: stage %s has no ENTRYPOINT", binary, last.name)
	}
	return last.entrypoint, nil
}

// argFlagNames returns the flag names that args set.
func argFlagNames(args []string) []string {
	var names []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		names = append(names, name)
	}
	return names
}

// TestContainerFlags checks every container of every build against the
// flag set of the binary its image runs: each arg must be a flag that binary
// registers (services/<name>.Config.RegisterFlags plus -log-level) with a
// value it accepts, and so must each RECSYS_* variable, its ConfigMap value
// resolved.
func TestContainerFlags(t *testing.T) {
	sources := map[string][]object{}
	for _, b := range appBuilds {
		sources[b] = build(t, b)
	}
	for _, f := range looseFiles {
		sources[f] = loadFile(t, f)
	}
	for _, src := range sortedKeys(sources) {
		objs := sources[src]
		for _, w := range workloads(t, objs) {
			for _, c := range w.containers {
				t.Run(src+"/"+w.owner+"/"+c.Name, func(t *testing.T) {
					if w.script {
						if why, ok := utilityImages[imageName(c.Image)]; !ok {
							t.Errorf("%s: script image %s is neither a recsys binary nor a known utility image %v", w.owner, c.Image, sortedKeys(utilityImages))
						} else {
							t.Skipf("%s runs %s (%s): no flags to check", w.owner, c.Image, why)
						}
					}
					bin := binaryOf(c.Image)
					fs, err := flagSet(bin)
					if err != nil {
						t.Fatal(err)
					}
					for _, name := range argFlagNames(c.Args) {
						if why, ok := pendingFlags[src][bin][name]; ok && fs.Lookup(name) == nil {
							t.Skipf("%s passes -%s to %s, whose Config does not register it yet: %s. This check runs once it does.", src, name, bin, why)
						}
					}
					resolve := func(ref *corev1.ConfigMapKeySelector) (string, error) { return configMapValue(objs, ref) }
					var entrypoint []string
					if w.pod == nil { // an Argo template
						if entrypoint, err = imageEntrypoint(repoRoot(t), bin); err != nil {
							t.Fatal(err)
						}
					}
					for _, err := range checkFlags(fs, c, entrypoint, resolve, w.params) {
						t.Errorf("%s %s (%s): %v", w.owner, c.Name, bin, err)
					}
				})
			}
		}
	}
}

// TestCheckFlagsRejects shows checkFlags failing on what a binary would
// reject or ignore.
func TestCheckFlagsRejects(t *testing.T) {
	noRef := func(ref *corev1.ConfigMapKeySelector) (string, error) {
		return "", fmt.Errorf("no ConfigMap %s", ref.Name)
	}
	cases := []struct {
		name       string
		bin        string
		c          corev1.Container
		entrypoint []string
	}{
		{"unknown flag", "userfeatures", corev1.Container{Args: []string{"--grpc-adr=:9091"}}, nil},
		{"flag of another binary", "web", corev1.Container{Args: []string{"--dlq-topic=x"}}, nil},
		{"bad duration", "feedback", corev1.Container{Args: []string{"--write-timeout=5"}}, nil},
		{"positional argument", "ranking", corev1.Container{Args: []string{"--grpc-addr", ":9093", "extra"}}, nil},
		{"env that sets no flag", "ranking", corev1.Container{Env: []corev1.EnvVar{{Name: "RECSYS_NO_SUCH_FLAG", Value: "x"}}}, nil},
		{"env with a bad value", "featurecompute", corev1.Container{Env: []corev1.EnvVar{{Name: "RECSYS_BATCH_SIZE", Value: "many"}}}, nil},
		{"env from a missing ConfigMap", "userfeatures", corev1.Container{Env: []corev1.EnvVar{{Name: "RECSYS_REDIS",
			ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "x"}, Key: "redis"}}}}}, nil},
		{"envFrom", "userfeatures", corev1.Container{EnvFrom: []corev1.EnvFromSource{{}}}, nil},
		{"command", "trainer", corev1.Container{Command: []string{"/bin/sh"}}, nil},
		{"Argo template without command", "trainer", corev1.Container{}, []string{"/usr/local/bin/trainer"}},
		{"Argo template with another command", "trainer", corev1.Container{Command: []string{"/bin/trainer"}}, []string{"/usr/local/bin/trainer"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, err := flagSet(c.bin)
			if err != nil {
				t.Fatal(err)
			}
			if errs := checkFlags(fs, c.c, c.entrypoint, noRef, nil); len(errs) == 0 {
				t.Errorf("checkFlags(%s, %+v) = no errors, want one", c.bin, c.c)
			}
		})
	}
	if _, err := flagSet("nginx"); err == nil {
		t.Error(`flagSet("nginx") = nil error, want one for an image that is no recsys binary`)
	}
}
