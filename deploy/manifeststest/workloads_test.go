package manifeststest

import (
	"context"
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
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	knservingv1 "knative.dev/serving/pkg/apis/serving/v1"

	"github.com/recsys/recsys/libs/config"
	"github.com/recsys/recsys/libs/servicemap"
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
// it runs, registered by the service package itself: the servers of the
// service table (TestServiceTableAgrees checks that each has one) and the
// batch jobs.
var binaries = map[string]func(*flag.FlagSet){
	string(servicemap.UserFeatures):   func(fs *flag.FlagSet) { new(userfeatures.Config).RegisterFlags(fs) },
	string(servicemap.ItemFeatures):   func(fs *flag.FlagSet) { new(itemfeatures.Config).RegisterFlags(fs) },
	string(servicemap.Ranking):        func(fs *flag.FlagSet) { new(ranking.Config).RegisterFlags(fs) },
	string(servicemap.Feedback):       func(fs *flag.FlagSet) { new(feedback.Config).RegisterFlags(fs) },
	string(servicemap.FeatureCompute): func(fs *flag.FlagSet) { new(featurecompute.Config).RegisterFlags(fs) },
	string(servicemap.Web):            func(fs *flag.FlagSet) { new(web.Config).RegisterFlags(fs) },
	"trainer":                         func(fs *flag.FlagSet) { new(trainer.Config).RegisterFlags(fs) },
	"ingest":                          func(fs *flag.FlagSet) { new(ingest.Config).RegisterFlags(fs) },
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

// utilityImages are the images, other than the recsys binaries, that a
// manifest may run (Argo script templates), with why.
var utilityImages = map[string]string{
	"python": "the training workflow's evaluate and publish steps: a few lines over metadata.json",
}

// workload is one pod template of a build (or one service of
// docker-compose.yml), with its containers as they will run.
type workload struct {
	owner          string // "Deployment ranking", "compose service ranking"
	labels         map[string]string
	podSC          *corev1.PodSecurityContext
	containers     []corev1.Container
	volumes        []corev1.Volume
	serviceAccount string
	pod            *corev1.PodSpec      // nil for Argo templates and compose
	compose        *types.ServiceConfig // set for compose services
	serving        bool                 // a long-running server (needs probes)
	params         map[string]string    // Argo workflow parameters, for {{workflow.parameters.x}}
	script         bool                 // an Argo script template: a utility image
	resolve        func(*corev1.ConfigMapKeySelector) (string, error)
}

func workloads(t testing.TB, objs []object) []workload {
	t.Helper()
	resolve := func(ref *corev1.ConfigMapKeySelector) (string, error) { return configMapValue(objs, ref) }
	pod := func(owner string, tpl *corev1.PodTemplateSpec, serving bool) workload {
		s := &tpl.Spec
		return workload{owner: owner, labels: tpl.Labels, podSC: s.SecurityContext, containers: append(slices.Clone(s.InitContainers), s.Containers...),
			volumes: s.Volumes, serviceAccount: s.ServiceAccountName, pod: s, serving: serving, resolve: resolve}
	}
	var out []workload
	for _, o := range objs {
		switch v := o.typed.(type) {
		case *appsv1.Deployment:
			out = append(out, pod("Deployment "+v.Name, &v.Spec.Template, true))
		case *batchv1.CronJob:
			out = append(out, pod("CronJob "+v.Name, &v.Spec.JobTemplate.Spec.Template, false))
		case *batchv1.Job:
			out = append(out, pod("Job "+v.Name, &v.Spec.Template, false))
		case *knservingv1.Service:
			tpl := corev1.PodTemplateSpec{ObjectMeta: v.Spec.Template.ObjectMeta, Spec: v.Spec.Template.Spec.PodSpec}
			out = append(out, pod("Knative Service "+v.Name, &tpl, true))
		case *wfv1.WorkflowTemplate:
			ws, err := argoWorkloads("WorkflowTemplate "+v.Name, &v.Spec, resolve)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ws...)
		case *wfv1.Workflow:
			ws, err := argoWorkloads("Workflow "+v.Name, &v.Spec, resolve)
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
// (a strategic merge of the template over the defaults).
func argoWorkloads(owner string, spec *wfv1.WorkflowSpec, resolve func(*corev1.ConfigMapKeySelector) (string, error)) ([]workload, error) {
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
			defaults, _ := json.Marshal(spec.TemplateDefaults)
			own, _ := json.Marshal(tpl)
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
		c := merged.Container
		if c == nil {
			c = &merged.Script.Container
		}
		c.Name = cmpOr(c.Name, "main") // Argo's name for a template's container
		var podLabels map[string]string
		if spec.PodMetadata != nil {
			podLabels = spec.PodMetadata.Labels
		}
		out = append(out, workload{owner: owner + " template " + tpl.Name, podSC: spec.SecurityContext, labels: podLabels,
			containers: []corev1.Container{*c}, volumes: spec.Volumes, serviceAccount: spec.ServiceAccountName, params: params,
			script: merged.Script != nil, resolve: resolve})
	}
	return out, nil
}

// composeFile is the compose platform, relative to the repository root.
const composeFile = "docker-compose.yml"

// loadCompose loads compose file content as docker compose does
// (compose-go: schema, interpolation from an empty environment, references,
// paths resolved against the repository root) with the given profiles ("*":
// all of them).
func loadCompose(root string, content []byte, profiles ...string) (*types.Project, error) {
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, composeFile), Content: content}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.Profiles = profiles })
}

// composeProject is docker-compose.yml with every profile enabled.
func composeProject(t testing.TB) *types.Project {
	t.Helper()
	p, err := loadCompose(repoRoot(t), readRepoFile(t, composeFile), "*")
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return p
}

// composeWorkloads are the recsys services of a compose project (image
// recsys/<binary>) as workloads, so that the same checks read them: the
// image's entrypoint runs the command as its args, ports are those
// published or exposed, named volumes are claims of their name, and
// compose's security settings are the container's security context.
func composeWorkloads(p *types.Project) []workload {
	var out []workload
	noConfigMaps := func(*corev1.ConfigMapKeySelector) (string, error) { return "", errors.New("compose has no ConfigMaps") }
	for _, name := range sortedKeys(p.Services) {
		s := p.Services[name]
		if !strings.HasPrefix(imageName(s.Image), "recsys/") {
			continue
		}
		c := corev1.Container{Name: name, Image: s.Image, Command: s.Entrypoint, Args: s.Command}
		for _, k := range sortedKeys(s.Environment) {
			if v := s.Environment[k]; v != nil {
				c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: *v})
			} else { // from the host's environment: checkFlags reports envFrom
				c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{Prefix: k})
			}
		}
		if len(s.EnvFiles) > 0 {
			c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{})
		}
		ports, _ := composePorts(s)
		for _, port := range ports {
			c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: int32(port)})
		}
		var volumes []corev1.Volume
		for _, v := range s.Volumes {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: v.Source, MountPath: v.Target, ReadOnly: v.ReadOnly})
			if v.Type == types.VolumeTypeVolume {
				volumes = append(volumes, corev1.Volume{Name: v.Source, VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: v.Source}}})
			}
		}
		noNewPrivileges := slices.Contains(s.SecurityOpt, "no-new-privileges:true")
		escalation := !noNewPrivileges || s.Privileged
		c.SecurityContext = &corev1.SecurityContext{ReadOnlyRootFilesystem: &s.ReadOnly, AllowPrivilegeEscalation: &escalation,
			Capabilities: &corev1.Capabilities{}}
		for _, cap := range s.CapDrop {
			c.SecurityContext.Capabilities.Drop = append(c.SecurityContext.Capabilities.Drop, corev1.Capability(cap))
		}
		for _, cap := range s.CapAdd {
			c.SecurityContext.Capabilities.Add = append(c.SecurityContext.Capabilities.Add, corev1.Capability(cap))
		}
		if d := s.Deploy; d != nil && d.Resources.Reservations != nil {
			for _, dev := range d.Resources.Reservations.Devices {
				if dev.Driver == "nvidia" && slices.Contains(dev.Capabilities, "gpu") {
					c.Resources.Limits = corev1.ResourceList{gpuResource: *resource.NewQuantity(int64(max(dev.Count, 1)), resource.DecimalSI)}
				}
			}
		}
		fs, _ := flagSet(binaryOf(s.Image))
		out = append(out, workload{owner: "compose service " + name, labels: map[string]string{"app": name}, containers: []corev1.Container{c},
			volumes: volumes, compose: &s, serving: fs != nil && fs.Lookup("grpc-addr") != nil, resolve: noConfigMaps})
	}
	return out
}

// composePorts are the container ports a compose service is reachable on
// inside the network: those published and those exposed.
func composePorts(s types.ServiceConfig) ([]uint32, error) {
	var ports []uint32
	for _, p := range s.Ports {
		ports = append(ports, p.Target)
	}
	for _, e := range s.Expose {
		var n uint32
		if _, err := fmt.Sscanf(e, "%d", &n); err != nil {
			return nil, fmt.Errorf("expose %q: want one TCP port", e)
		}
		ports = append(ports, n)
	}
	slices.Sort(ports)
	return slices.Compact(ports), nil
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

// binaryFlags parses a container's RECSYS_* environment and args the way
// its binary will (libs/config: environment, then args) and returns the
// flag set with those values, and what the binary would reject or
// silently ignore. entrypoint is the command the container must name: nil
// where the image's own ENTRYPOINT runs, the image's ENTRYPOINT where the
// runner must be told it (Argo's executor does not look it up).
func binaryFlags(bin string, c corev1.Container, entrypoint []string, resolve func(*corev1.ConfigMapKeySelector) (string, error), params map[string]string) (*flag.FlagSet, []error) {
	fs, err := flagSet(bin)
	if err != nil {
		return nil, []error{err}
	}
	var errs []error
	switch {
	case entrypoint == nil && len(c.Command) > 0:
		errs = append(errs, fmt.Errorf("command %q replaces the image's entrypoint (the binary); pass flags as args", c.Command))
	case entrypoint != nil && !slices.Equal(c.Command, entrypoint):
		errs = append(errs, fmt.Errorf("command %q, want the image's ENTRYPOINT %q: Argo's executor runs command and args, and asks the registry when command is missing", c.Command, entrypoint))
	}
	if len(c.EnvFrom) > 0 {
		errs = append(errs, errors.New("environment from outside (envFrom, env files, variables without a value) hides which flags it sets; name each RECSYS_* variable with its value"))
	}
	byEnv := map[string]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) { byEnv[config.EnvName(f.Name)] = f })
	for _, e := range c.Env {
		if !strings.HasPrefix(e.Name, "RECSYS_") {
			continue
		}
		f := byEnv[e.Name]
		if f == nil {
			errs = append(errs, fmt.Errorf("env %s sets no flag of %s (the binary ignores it)", e.Name, bin))
			continue
		}
		value := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.ConfigMapKeyRef == nil {
				continue // resolved by the cluster (fieldRef, secrets)
			}
			if value, err = resolve(e.ValueFrom.ConfigMapKeyRef); err != nil {
				errs = append(errs, fmt.Errorf("env %s: %w", e.Name, err))
				continue
			}
		}
		if err := f.Value.Set(value); err != nil {
			errs = append(errs, fmt.Errorf("env %s=%q: -%s rejects it: %w", e.Name, value, f.Name, err))
		}
	}
	args := make([]string, len(c.Args))
	for i, a := range c.Args {
		// An undefined parameter is Argo's validation's to report
		// (TestArgoValidates); here it parses as empty.
		args[i] = workflowParam.ReplaceAllStringFunc(a, func(m string) string { return params[workflowParam.FindStringSubmatch(m)[1]] })
	}
	if err := fs.Parse(args); err != nil {
		errs = append(errs, fmt.Errorf("args %q: %w", args, err))
	} else if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("args %q: the binary ignores the positional arguments %q", args, fs.Args()))
	}
	return fs, errs
}

// dockerfileValues returns the arguments of every instruction of a kind
// (ENTRYPOINT, EXPOSE, USER) in services/<binary>/Dockerfile: each image
// target must agree, so every stage is read. It is no Dockerfile parser:
// the project's Dockerfiles write these instructions on one line each.
func dockerfileValues(t testing.TB, binary, instruction string) []string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + instruction + `\s+(.+?)\s*$`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(string(readRepoFile(t, filepath.Join("services", binary, "Dockerfile"))), -1) {
		out = append(out, m[1])
	}
	return out
}

// sources are every set of workloads the checks read: each app build, the
// loose files and docker-compose.yml.
func sources(t testing.TB) map[string][]workload {
	t.Helper()
	out := map[string][]workload{composeFile: composeWorkloads(composeProject(t))}
	for _, b := range appBuilds {
		out[b] = workloads(t, build(t, b))
	}
	for _, f := range looseFiles {
		out[f] = workloads(t, loadFile(t, f))
	}
	return out
}

// TestContainerFlags checks every container of every build, loose file and
// compose service against the flag set of the binary its image runs: each
// arg and each RECSYS_* variable (its ConfigMap value resolved) must be a
// flag that binary registers, with a value it accepts; an Argo step must
// name its image's ENTRYPOINT as its command, and that ENTRYPOINT must run
// the binary.
func TestContainerFlags(t *testing.T) {
	for src, ws := range sources(t) {
		for _, w := range ws {
			for _, c := range w.containers {
				if w.script {
					if _, ok := utilityImages[imageName(c.Image)]; !ok {
						t.Errorf("%s: %s: script image %s is neither a recsys binary nor a known utility image %v", src, w.owner, c.Image, sortedKeys(utilityImages))
					}
					continue
				}
				bin := binaryOf(c.Image)
				var entrypoint []string
				if w.pod == nil && w.compose == nil { // an Argo template
					entrypoint = []string{"/usr/local/bin/" + bin}
				}
				if _, errs := binaryFlags(bin, c, entrypoint, w.resolve, w.params); len(errs) > 0 {
					t.Errorf("%s: %s container %s (%s): %v", src, w.owner, c.Name, bin, errors.Join(errs...))
				}
			}
		}
	}
	for bin := range binaries {
		if e := dockerfileValues(t, bin, "ENTRYPOINT"); len(e) == 0 || slices.ContainsFunc(e, func(v string) bool { return v != `["/usr/local/bin/`+bin+`"]` }) {
			t.Errorf("services/%s/Dockerfile: ENTRYPOINT %q, want [\"/usr/local/bin/%s\"] in every target (flags are passed as args)", bin, e, bin)
		}
	}
}

// TestBinaryFlagsRejects shows binaryFlags failing on what a binary would
// reject or ignore.
func TestBinaryFlagsRejects(t *testing.T) {
	noRef := func(ref *corev1.ConfigMapKeySelector) (string, error) {
		return "", fmt.Errorf("no ConfigMap %s", ref.Name)
	}
	cases := []struct {
		name, bin  string
		c          corev1.Container
		entrypoint []string
	}{
		{"unknown flag", "userfeatures", corev1.Container{Args: []string{"--grpc-adr=:50051"}}, nil},
		{"flag of another binary", "web", corev1.Container{Args: []string{"--dlq-topic=x"}}, nil},
		{"bad duration", "feedback", corev1.Container{Args: []string{"--write-timeout=5"}}, nil},
		{"positional argument", "ranking", corev1.Container{Args: []string{"--grpc-addr", ":50053", "extra"}}, nil},
		{"env that sets no flag", "ranking", corev1.Container{Env: []corev1.EnvVar{{Name: "RECSYS_NO_SUCH_FLAG", Value: "x"}}}, nil},
		{"env with a bad value", "featurecompute", corev1.Container{Env: []corev1.EnvVar{{Name: "RECSYS_BATCH_SIZE", Value: "many"}}}, nil},
		{"env from a missing ConfigMap", "userfeatures", corev1.Container{Env: []corev1.EnvVar{{Name: "RECSYS_REDIS",
			ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "redis"}}}}}, nil},
		{"envFrom", "userfeatures", corev1.Container{EnvFrom: []corev1.EnvFromSource{{}}}, nil},
		{"command", "trainer", corev1.Container{Command: []string{"/bin/sh"}}, nil},
		{"Argo template without command", "trainer", corev1.Container{}, []string{"/usr/local/bin/trainer"}},
		{"no recsys binary", "nginx", corev1.Container{}, nil},
	}
	for _, c := range cases {
		if _, errs := binaryFlags(c.bin, c.c, c.entrypoint, noRef, nil); len(errs) == 0 {
			t.Errorf("%s: binaryFlags(%s, %+v) = no errors, want one", c.name, c.bin, c.c)
		}
	}
}
