package manifeststest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	rolloutsv1 "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	vpav1 "k8s.io/autoscaler/vertical-pod-autoscaler/pkg/apis/autoscaling.k8s.io/v1"
	"k8s.io/klog/v2"
	knservingv1 "knative.dev/serving/pkg/apis/serving/v1"
)

const gpuResource corev1.ResourceName = "nvidia.com/gpu"

// TestPodHardening: every container, in Kubernetes and in compose, runs as
// non-root with a read-only root filesystem, no privilege escalation and no
// capabilities; in Kubernetes it also names its uid (a distroless image may
// have no user entry) and has CPU and memory requests and limits. Compose
// runs the image's USER, which every Dockerfile sets to a numeric non-root
// uid (runAsNonRoot can only verify a number).
func TestPodHardening(t *testing.T) {
	for src, ws := range sources(t) {
		for _, w := range ws {
			for _, c := range w.containers {
				for _, err := range hardeningErrors(w, c) {
					t.Errorf("%s: %s container %s: %v", src, w.owner, c.Name, err)
				}
			}
		}
	}
	for bin := range binaries {
		for _, u := range dockerfileValues(t, bin, "USER") {
			if uid, _, _ := strings.Cut(u, ":"); uid == "0" || strings.Trim(uid, "0123456789") != "" {
				t.Errorf("services/%s/Dockerfile: USER %s, want a numeric non-root uid", bin, u)
			}
		}
	}
}

func hardeningErrors(w workload, c corev1.Container) []error {
	var errs []error
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	pod := w.podSC
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	if w.compose != nil {
		if w.compose.User != "" || w.compose.Privileged {
			errs = append(errs, fmt.Errorf("user %q, privileged %v: want the image's non-root USER", w.compose.User, w.compose.Privileged))
		}
	} else {
		if nonRoot := cmpPtr(sc.RunAsNonRoot, pod.RunAsNonRoot); nonRoot == nil || !*nonRoot {
			errs = append(errs, fmt.Errorf("runAsNonRoot is not true (pod or container)"))
		}
		if uid := cmpPtr(sc.RunAsUser, pod.RunAsUser); uid == nil || *uid == 0 {
			errs = append(errs, fmt.Errorf("runAsUser is not a non-zero uid"))
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[r]; !ok {
				errs = append(errs, fmt.Errorf("no %s request", r))
			}
			if _, ok := c.Resources.Limits[r]; !ok {
				errs = append(errs, fmt.Errorf("no %s limit", r))
			}
		}
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		errs = append(errs, fmt.Errorf("readOnlyRootFilesystem is not true"))
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		errs = append(errs, fmt.Errorf("privilege escalation is not off"))
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		errs = append(errs, fmt.Errorf("capabilities do not drop ALL and add none"))
	}
	return errs
}

func cmpPtr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

// TestServingProbes: every Kubernetes server has startup, readiness and
// liveness probes on gRPC health at its gRPC container port; liveness asks
// the "liveness" health service (the default one is readiness: probing it
// for liveness would restart pods that wait for Redis).
func TestServingProbes(t *testing.T) {
	for _, b := range appBuilds {
		for _, w := range workloads(t, build(t, b)) {
			if !w.serving {
				continue
			}
			for _, c := range w.containers {
				i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "grpc" || p.Name == "h2c" })
				if i < 0 {
					t.Errorf("%s: %s: no container port named grpc (or h2c for Knative)", b, w.owner)
					continue
				}
				probes := map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe}
				if !strings.HasPrefix(w.owner, "Knative") { // Knative's queue-proxy does startup itself
					probes["startup"] = c.StartupProbe
				}
				for name, p := range probes {
					want := ""
					if name == "liveness" {
						want = "liveness"
					}
					if p == nil || p.GRPC == nil || p.GRPC.Port != c.Ports[i].ContainerPort || cmpOr(ptrValue(p.GRPC.Service), "") != want {
						t.Errorf("%s: %s: %s probe %+v, want gRPC health service %q on port %d", b, w.owner, name, p, want, c.Ports[i].ContainerPort)
					}
				}
			}
		}
	}
}

func ptrValue[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func mustSelector(t testing.TB, s *metav1.LabelSelector) labels.Selector {
	t.Helper()
	if s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0) {
		t.Fatalf("empty selector %v: it would select every pod", s)
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// servingPods returns the labels of every pod template of a build that can
// back a Service (Deployments, Knative revisions).
func servingPods(t testing.TB, objs []object) []labels.Set {
	t.Helper()
	var out []labels.Set
	for _, w := range workloads(t, objs) {
		if w.serving {
			out = append(out, w.labels)
		}
	}
	return out
}

func matchesAny(sel labels.Selector, pods []labels.Set) bool {
	return slices.ContainsFunc(pods, func(p labels.Set) bool { return sel.Matches(p) })
}

// TestSelectorsAndReferences: every pod carries the app and version labels
// Istio's telemetry and the DestinationRule subsets use; every Deployment's
// selector picks its own pods and no other's; every Service, PDB and
// ServiceMonitor selects something of the build; every HPA, VPA and
// Rollout names something that exists; every ConfigMap key, claim, mount,
// service account and priority class a pod uses is in the same build.
func TestSelectorsAndReferences(t *testing.T) {
	for _, b := range appBuilds {
		objs := build(t, b)
		pods := servingPods(t, objs)
		fail := func(format string, args ...any) { t.Errorf(b+": "+format, args...) }
		deployments := all[*appsv1.Deployment](objs)
		for _, d := range deployments {
			for _, l := range []string{"app", "version", "app.kubernetes.io/part-of"} {
				if d.Spec.Template.Labels[l] == "" {
					fail("Deployment %s: pods have no %s label", d.Name, l)
				}
			}
			sel := mustSelector(t, d.Spec.Selector)
			for _, other := range deployments {
				if sel.Matches(labels.Set(other.Spec.Template.Labels)) != (other == d) {
					fail("Deployment %s: selector %v and the pods of Deployment %s: matches %v", d.Name, d.Spec.Selector.MatchLabels, other.Name, other != d)
				}
			}
		}
		for _, s := range all[*corev1.Service](objs) {
			if len(s.Spec.Selector) == 0 || !matchesAny(labels.SelectorFromSet(s.Spec.Selector), pods) {
				fail("Service %s: selector %v matches no pod template", s.Name, s.Spec.Selector)
			}
		}
		for _, p := range all[*policyv1.PodDisruptionBudget](objs) {
			if !matchesAny(mustSelector(t, p.Spec.Selector), pods) {
				fail("PodDisruptionBudget %s: selector matches no pod template", p.Name)
			}
		}
		for _, h := range all[*autoscalingv2.HorizontalPodAutoscaler](objs) {
			ref := h.Spec.ScaleTargetRef
			if !(ref.Kind == "Deployment" && named[*appsv1.Deployment](objs, ref.Name) != nil) && !(ref.Kind == "Rollout" && named[*rolloutsv1.Rollout](objs, ref.Name) != nil) {
				fail("HorizontalPodAutoscaler %s: target %s %s is not in the build", h.Name, ref.Kind, ref.Name)
			}
		}
		for _, r := range all[*rolloutsv1.Rollout](objs) {
			for _, err := range rolloutRefErrors(objs, r) {
				fail("Rollout %s: %v", r.Name, err)
			}
		}
		for _, v := range all[*vpav1.VerticalPodAutoscaler](objs) {
			d := named[*appsv1.Deployment](objs, v.Spec.TargetRef.Name)
			if v.Spec.TargetRef.Kind != "Deployment" || d == nil {
				fail("VerticalPodAutoscaler %s: target is not in the build", v.Name)
				continue
			}
			for _, cp := range v.Spec.ResourcePolicy.ContainerPolicies {
				if !slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == cp.ContainerName }) {
					fail("VerticalPodAutoscaler %s: container %s is not in Deployment %s", v.Name, cp.ContainerName, d.Name)
				}
			}
		}
		for _, sm := range all[*monitoringv1.ServiceMonitor](objs) {
			sel, n := mustSelector(t, &sm.Spec.Selector), 0
			for _, s := range all[*corev1.Service](objs) {
				if !sel.Matches(labels.Set(s.Labels)) {
					continue
				}
				n++
				for _, ep := range sm.Spec.Endpoints {
					if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
						fail("ServiceMonitor %s: Service %s has no port %q", sm.Name, s.Name, ep.Port)
					}
				}
			}
			if n == 0 {
				fail("ServiceMonitor %s: selector matches no Service", sm.Name)
			}
		}
		for _, w := range workloads(t, objs) {
			for _, err := range podRefErrors(objs, w) {
				fail("%s: %v", w.owner, err)
			}
		}
	}
}

func podRefErrors(objs []object, w workload) []error {
	var errs []error
	if w.serviceAccount == "" || named[*corev1.ServiceAccount](objs, w.serviceAccount) == nil {
		errs = append(errs, fmt.Errorf("service account %q is not in the build (the mesh identity must be explicit)", w.serviceAccount))
	}
	if w.pod != nil && w.pod.PriorityClassName != "" && named[*schedulingv1.PriorityClass](objs, w.pod.PriorityClassName) == nil {
		errs = append(errs, fmt.Errorf("priority class %q is not in the build", w.pod.PriorityClassName))
	}
	volumes := map[string]bool{}
	for _, v := range w.volumes {
		volumes[v.Name] = true
		if cm := v.ConfigMap; cm != nil && named[*corev1.ConfigMap](objs, cm.Name) == nil {
			errs = append(errs, fmt.Errorf("volume %s: ConfigMap %q is not in the build", v.Name, cm.Name))
		}
		if pvc := v.PersistentVolumeClaim; pvc != nil && named[*corev1.PersistentVolumeClaim](objs, pvc.ClaimName) == nil {
			errs = append(errs, fmt.Errorf("volume %s: claim %q is not in the build", v.Name, pvc.ClaimName))
		}
	}
	for _, c := range w.containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				if _, err := configMapValue(objs, e.ValueFrom.ConfigMapKeyRef); err != nil {
					errs = append(errs, fmt.Errorf("container %s env %s: %w", c.Name, e.Name, err))
				}
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				errs = append(errs, fmt.Errorf("container %s mounts volume %q, which the pod does not have", c.Name, m.Name))
			}
		}
	}
	return errs
}

// TestModelRegistry: the registry (the models claim, or compose's models
// volume) is mounted at the binary's -model-root, read-only in every
// ranking and read-write in the trainer; compose's ranking starts after its
// trainer has published.
func TestModelRegistry(t *testing.T) {
	for src, ws := range sources(t) {
		var rankers, trainers int
		for _, w := range ws {
			for _, c := range w.containers {
				bin := binaryOf(c.Image)
				if bin != "ranking" && bin != "trainer" {
					continue
				}
				fs, _ := binaryFlags(bin, c, c.Command, w.resolve, w.params)
				m, root := mountOf(w, c, "models"), fs.Lookup("model-root").Value.String()
				switch {
				case m == nil || !strings.HasPrefix(root+"/", m.MountPath+"/"):
					t.Errorf("%s: %s: the models claim is not mounted at or above -model-root %s", src, w.owner, root)
				case (bin == "ranking") != m.ReadOnly:
					t.Errorf("%s: %s: %s mounts the registry read-only=%v; ranking reads it, the trainer writes it", src, w.owner, bin, m.ReadOnly)
				}
				if w.compose != nil && bin == "ranking" && w.compose.DependsOn["trainer"].Condition != "service_completed_successfully" {
					t.Errorf("%s: %s does not wait for the trainer to publish a first model", src, w.owner)
				}
				rankers += btoi(bin == "ranking")
				trainers += btoi(bin == "trainer")
			}
		}
		if !slices.Contains(looseFiles, src) && (rankers == 0 || (trainers == 0 && (src == prod || src == composeFile))) {
			t.Errorf("%s: %d ranking and %d trainer containers", src, rankers, trainers)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mountOf returns the container's mount of the volume backed by claim.
func mountOf(w workload, c corev1.Container, claim string) *corev1.VolumeMount {
	for _, v := range w.volumes {
		if v.PersistentVolumeClaim == nil || v.PersistentVolumeClaim.ClaimName != claim {
			continue
		}
		for i := range c.VolumeMounts {
			if c.VolumeMounts[i].Name == v.Name {
				return &c.VolumeMounts[i]
			}
		}
	}
	return nil
}

// TestAutoscaling: ranking scales on a per-pod request-rate metric,
// featurecompute on its consumer lag (an External metric the service
// registers), every VPA only recommends, and every ServiceMonitor scrapes
// /metrics on an http- port.
func TestAutoscaling(t *testing.T) {
	registered := registeredMetrics(t)
	for _, b := range []string{base, dev, prod, gpu} {
		objs := build(t, b)
		want := map[string]func(autoscalingv2.MetricSpec) bool{
			"ranking": func(m autoscalingv2.MetricSpec) bool {
				return m.Pods != nil && strings.Contains(m.Pods.Metric.Name, "requests_per_second")
			},
			"featurecompute": func(m autoscalingv2.MetricSpec) bool {
				return m.External != nil && m.External.Metric.Name == "recsys_featurecompute_consumer_lag" && registered[m.External.Metric.Name]
			},
		}
		for name, ok := range want {
			h := named[*autoscalingv2.HorizontalPodAutoscaler](objs, name)
			if h == nil || !slices.ContainsFunc(h.Spec.Metrics, ok) || h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
				t.Errorf("%s: HorizontalPodAutoscaler %s: %+v lacks the expected metric or sane replicas", b, name, h)
			}
		}
	}
	objs := build(t, prod)
	for _, v := range all[*vpav1.VerticalPodAutoscaler](objs) {
		if v.Spec.UpdatePolicy == nil || ptrValue(v.Spec.UpdatePolicy.UpdateMode) != vpav1.UpdateModeOff {
			t.Errorf("%s: VerticalPodAutoscaler %s: updateMode is not \"Off\" (recommendations only)", prod, v.Name)
		}
	}
	sms := all[*monitoringv1.ServiceMonitor](objs)
	for _, sm := range sms {
		for _, ep := range sm.Spec.Endpoints {
			if ep.Path != "/metrics" || !strings.HasPrefix(ep.Port, "http-") {
				t.Errorf("%s: ServiceMonitor %s: scrapes %s on port %s, want /metrics on an http- port", prod, sm.Name, ep.Path, ep.Port)
			}
		}
	}
	if len(sms) == 0 || len(all[*vpav1.VerticalPodAutoscaler](objs)) == 0 {
		t.Errorf("%s: want ServiceMonitors and VerticalPodAutoscalers", prod)
	}
}

// TestGPU: only ranking asks for a GPU, and a ranking on a GPU runs ONNX
// Runtime's CUDA provider (the last -execution-provider wins; auto would
// fall back to the CPU silently), and one with the CUDA provider has a
// GPU. In the gpu overlay every ranking pod has one, tolerates the GPU
// nodes' taint, selects them and has a priority class; nothing in prod
// has one. In compose the GPU ranking is behind the gpu profile (docker
// compose up works without a GPU) and built from the image's gpu target.
func TestGPU(t *testing.T) {
	for src, ws := range sources(t) {
		gpuRankers := 0
		for _, w := range ws {
			for _, c := range w.containers {
				_, hasGPU := c.Resources.Limits[gpuResource]
				bin := binaryOf(c.Image)
				cuda := bin == "ranking" && lastFlag(c, "execution-provider") == "cuda"
				if hasGPU != cuda || (hasGPU && (src == prod || bin != "ranking")) {
					t.Errorf("%s: %s (%s): GPU %v with execution provider %q", src, w.owner, bin, hasGPU, lastFlag(c, "execution-provider"))
				}
				if !hasGPU {
					continue
				}
				gpuRankers++
				if s := w.compose; s != nil && (!slices.Contains(s.Profiles, "gpu") || s.Build == nil || s.Build.Target != "gpu") {
					t.Errorf("%s: %s: profiles %q, build %+v: want profile gpu and the Dockerfile's gpu target", src, w.owner, s.Profiles, s.Build)
				}
				if p := w.pod; p != nil && (!toleratesGPUTaint(p.Tolerations) || len(p.NodeSelector) == 0 || p.PriorityClassName == "") {
					t.Errorf("%s: %s: tolerations %+v, nodeSelector %v, priority class %q: want the GPU nodes' taint tolerated, a selector and a priority class", src, w.owner, p.Tolerations, p.NodeSelector, p.PriorityClassName)
				}
			}
		}
		if want := src == gpu || src == composeFile; want != (gpuRankers > 0) {
			t.Errorf("%s: %d ranking containers on a GPU", src, gpuRankers)
		}
	}
}

// lastFlag returns the value the binary will see for a flag given as
// --name=value in args or RECSYS_NAME in the environment (args win).
func lastFlag(c corev1.Container, name string) string {
	v := ""
	for _, e := range c.Env {
		if e.Name == "RECSYS_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_")) {
			v = e.Value
		}
	}
	for _, a := range c.Args {
		if rest, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), name+"="); ok {
			v = rest
		}
	}
	return v
}

func toleratesGPUTaint(ts []corev1.Toleration) bool {
	taint := corev1.Taint{Key: string(gpuResource), Value: "present", Effect: corev1.TaintEffectNoSchedule}
	return slices.ContainsFunc(ts, func(tol corev1.Toleration) bool { return tol.ToleratesTaint(klog.Background(), &taint, false) })
}

// TestKnativeService: ranking's Knative Service autoscales on requests and
// runs the very container of the ranking Deployment (copied by the
// kustomization's replacements), which it replaces.
func TestKnativeService(t *testing.T) {
	objs := build(t, knative)
	ks := named[*knservingv1.Service](objs, "ranking")
	if ks == nil {
		t.Fatal("knative: no Knative Service ranking")
	}
	ann := ks.Spec.Template.Annotations
	if ann["autoscaling.knative.dev/class"] != "kpa.autoscaling.knative.dev" || (ann["autoscaling.knative.dev/metric"] != "rps" && ann["autoscaling.knative.dev/metric"] != "concurrency") || ann["autoscaling.knative.dev/target"] == "" {
		t.Errorf("knative: autoscaling annotations %v, want the KPA on rps or concurrency with a target", ann)
	}
	if slices.ContainsFunc(all[*appsv1.Deployment](objs), func(d *appsv1.Deployment) bool { return d.Spec.Template.Labels["app"] == "ranking" }) {
		t.Error("knative: a Deployment still runs ranking beside the Knative Service")
	}
	dep := named[*appsv1.Deployment](build(t, base), "ranking")
	want, got := dep.Spec.Template.Spec.Containers[0], ks.Spec.Template.Spec.Containers[0]
	if want.Image != got.Image || !slices.Equal(want.Args, got.Args) || !want.Resources.Limits.Cpu().Equal(*got.Resources.Limits.Cpu()) ||
		len(want.Env) != len(got.Env) || len(want.VolumeMounts) != len(got.VolumeMounts) {
		t.Errorf("knative: ranking container differs from the Deployment's:\n got  %s %q\n want %s %q", got.Image, got.Args, want.Image, want.Args)
	}
}

// TestTrainingWorkflow: the pipeline is data-prep -> train -> evaluate ->
// publish -> canary with the ingest and trainer images, an exit handler
// that rolls back and applies retention, and a CronWorkflow and a Workflow
// running that template.
func TestTrainingWorkflow(t *testing.T) {
	objs := build(t, prod)
	wt := named[*wfv1.WorkflowTemplate](objs, "train-model")
	if wt == nil {
		t.Fatal("prod: no WorkflowTemplate train-model")
	}
	tpl := map[string]*wfv1.Template{}
	for i := range wt.Spec.Templates {
		tpl[wt.Spec.Templates[i].Name] = &wt.Spec.Templates[i]
	}
	after := map[string][]string{}
	if dag := tpl[wt.Spec.Entrypoint].DAG; dag != nil {
		for _, task := range dag.Tasks {
			after[task.Name] = task.Dependencies
		}
	}
	steps := []string{"data-prep", "train", "evaluate", "publish", "canary"}
	for i, s := range steps {
		if deps, ok := after[s]; !ok || !slices.Equal(deps, steps[max(i-1, 0):i]) {
			t.Errorf("train-model: task %s depends on %q, want %q", s, deps, steps[max(i-1, 0):i])
		}
	}
	var ran []string
	if exit := tpl[wt.Spec.OnExit]; exit != nil {
		for _, group := range exit.Steps {
			for _, st := range group.Steps {
				ran = append(ran, st.Template)
			}
		}
	}
	if !slices.Contains(ran, "set-arms") || !slices.Contains(ran, "retention") {
		t.Errorf("train-model: the exit handler runs %q, want the rollback (set-arms) and retention", ran)
	}
	images := map[string]string{}
	for _, w := range workloads(t, objs) { // templateDefaults merged
		if task, ok := strings.CutPrefix(w.owner, "WorkflowTemplate train-model template "); ok {
			images[task] = binaryOf(w.containers[0].Image)
		}
	}
	for task, bin := range map[string]string{"data-prep": "ingest", "train": "trainer"} {
		if images[task] != bin {
			t.Errorf("train-model: template %s runs %q, want the %s image", task, images[task], bin)
		}
	}
	refs := map[string]*wfv1.WorkflowTemplateRef{}
	for _, cw := range all[*wfv1.CronWorkflow](objs) {
		refs["CronWorkflow "+cw.Name] = cw.Spec.WorkflowSpec.WorkflowTemplateRef
		if len(cw.Spec.Schedules) == 0 && cw.Spec.Schedule == "" {
			t.Errorf("CronWorkflow %s: no schedule", cw.Name)
		}
	}
	for _, f := range looseFiles {
		for _, w := range all[*wfv1.Workflow](loadFile(t, f)) {
			refs[f+" Workflow "+w.Name] = w.Spec.WorkflowTemplateRef
		}
	}
	if len(refs) < 2 {
		t.Errorf("want a CronWorkflow and a Workflow running train-model, found %v", sortedKeys(refs))
	}
	for who, ref := range refs {
		if ref == nil || ref.Name != wt.Name || ref.ClusterScope {
			t.Errorf("%s: workflowTemplateRef %+v, want %s", who, ref, wt.Name)
		}
	}
}
