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

// TestPodHardening: every container runs as non-root with a read-only root
// filesystem, no privilege escalation and no capabilities, and has CPU and
// memory requests and limits.
func TestPodHardening(t *testing.T) {
	for _, b := range appBuilds {
		for _, w := range workloads(t, build(t, b)) {
			for _, c := range w.containers {
				for _, err := range hardeningErrors(w.podSC, c) {
					t.Errorf("%s: %s container %s: %v", b, w.owner, c.Name, err)
				}
			}
		}
	}
}

func hardeningErrors(pod *corev1.PodSecurityContext, c corev1.Container) []error {
	var errs []error
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil && pod != nil {
		nonRoot = pod.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		errs = append(errs, fmt.Errorf("runAsNonRoot is not true (pod or container)"))
	}
	uid := sc.RunAsUser
	if uid == nil && pod != nil {
		uid = pod.RunAsUser
	}
	if uid == nil || *uid == 0 {
		errs = append(errs, fmt.Errorf("runAsUser is not a non-zero uid (a distroless image may have no user entry)"))
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		errs = append(errs, fmt.Errorf("readOnlyRootFilesystem is not true"))
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		errs = append(errs, fmt.Errorf("allowPrivilegeEscalation is not false"))
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		errs = append(errs, fmt.Errorf("capabilities do not drop ALL"))
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			errs = append(errs, fmt.Errorf("no %s request", r))
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			errs = append(errs, fmt.Errorf("no %s limit", r))
		}
	}
	return errs
}

// TestServingProbes: every server has startup, readiness and liveness
// probes on gRPC health (grpc.health.v1) at its gRPC container port.
func TestServingProbes(t *testing.T) {
	for _, b := range appBuilds {
		for _, w := range workloads(t, build(t, b)) {
			if !w.serving {
				continue
			}
			for _, c := range w.containers {
				grpcPort := int32(0)
				for _, p := range c.Ports {
					if p.Name == "grpc" || p.Name == "h2c" {
						grpcPort = p.ContainerPort
					}
				}
				if grpcPort == 0 {
					t.Errorf("%s: %s container %s: no container port named grpc (or h2c for Knative)", b, w.owner, c.Name)
					continue
				}
				probes := map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe}
				if !strings.HasPrefix(w.owner, "Knative") { // Knative's queue-proxy does startup itself
					probes["startup"] = c.StartupProbe
				}
				for name, p := range probes {
					switch {
					case p == nil:
						t.Errorf("%s: %s container %s: no %s probe", b, w.owner, c.Name, name)
					case p.GRPC == nil:
						t.Errorf("%s: %s container %s: %s probe is not a gRPC health probe", b, w.owner, c.Name, name)
					case p.GRPC.Port != grpcPort:
						t.Errorf("%s: %s container %s: %s probe on port %d, want the gRPC port %d", b, w.owner, c.Name, name, p.GRPC.Port, grpcPort)
					case name == "liveness" && (p.GRPC.Service == nil || *p.GRPC.Service != "liveness"):
						// The default health service is readiness: probing it for
						// liveness would restart pods that wait for Redis.
						t.Errorf("%s: %s container %s: liveness probe must ask the \"liveness\" health service", b, w.owner, c.Name)
					case name != "liveness" && p.GRPC.Service != nil && *p.GRPC.Service != "":
						t.Errorf("%s: %s container %s: %s probe asks service %q, want the default (readiness)", b, w.owner, c.Name, name, *p.GRPC.Service)
					}
				}
			}
		}
	}
}

// TestLabels: every pod carries the app and version labels Istio's
// telemetry and the DestinationRule subsets use, and every Deployment's
// selector picks its own pods and no other Deployment's.
func TestLabels(t *testing.T) {
	for _, b := range appBuilds {
		objs := build(t, b)
		for _, w := range workloads(t, objs) {
			if w.pod == nil {
				continue // Argo pods are labelled by Argo
			}
			for _, l := range []string{"app", "version", "app.kubernetes.io/part-of"} {
				if w.labels[l] == "" {
					t.Errorf("%s: %s: pod has no %s label (labels %v)", b, w.owner, l, w.labels)
				}
			}
		}
		deployments := all[*appsv1.Deployment](objs)
		for _, d := range deployments {
			sel := mustSelector(t, d.Spec.Selector)
			for _, other := range deployments {
				matches := sel.Matches(labels.Set(other.Spec.Template.Labels))
				if other == d && !matches {
					t.Errorf("%s: Deployment %s: selector %v does not match its pod labels %v", b, d.Name, d.Spec.Selector.MatchLabels, other.Spec.Template.Labels)
				}
				if other != d && matches {
					t.Errorf("%s: Deployment %s: selector %v also matches the pods of Deployment %s", b, d.Name, d.Spec.Selector.MatchLabels, other.Name)
				}
			}
		}
	}
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

// podLabels returns the labels of every pod template of a build that can
// back a Service (Deployments, Knative revisions).
func podLabels(t testing.TB, objs []object) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, w := range workloads(t, objs) {
		if w.serving {
			out = append(out, w.labels)
		}
	}
	return out
}

func matchesAny(sel labels.Selector, pods []map[string]string) bool {
	for _, p := range pods {
		if sel.Matches(labels.Set(p)) {
			return true
		}
	}
	return false
}

// TestReferences: every Service and PodDisruptionBudget selects pods of the
// build; every HPA, VPA and ServiceMonitor names something that exists;
// every ConfigMap key, claim, service account and priority class a pod
// uses is in the same build.
func TestReferences(t *testing.T) {
	for _, b := range appBuilds {
		objs := build(t, b)
		pods := podLabels(t, objs)
		for _, s := range all[*corev1.Service](objs) {
			sel := labels.SelectorFromSet(s.Spec.Selector)
			if len(s.Spec.Selector) == 0 || !matchesAny(sel, pods) {
				t.Errorf("%s: Service %s: selector %v matches no pod template", b, s.Name, s.Spec.Selector)
			}
		}
		for _, p := range all[*policyv1.PodDisruptionBudget](objs) {
			if !matchesAny(mustSelector(t, p.Spec.Selector), pods) {
				t.Errorf("%s: PodDisruptionBudget %s: selector %v matches no pod template", b, p.Name, p.Spec.Selector.MatchLabels)
			}
		}
		for _, h := range all[*autoscalingv2.HorizontalPodAutoscaler](objs) {
			ref := h.Spec.ScaleTargetRef
			switch {
			case ref.Kind == "Deployment" && ref.APIVersion == "apps/v1" && named[*appsv1.Deployment](objs, ref.Name) != nil:
			case ref.Kind == "Rollout" && ref.APIVersion == "argoproj.io/v1alpha1" && named[*rolloutsv1.Rollout](objs, ref.Name) != nil:
			default:
				t.Errorf("%s: HorizontalPodAutoscaler %s: target %s %s %s is not in the build", b, h.Name, ref.APIVersion, ref.Kind, ref.Name)
			}
		}
		for _, r := range all[*rolloutsv1.Rollout](objs) {
			for _, err := range rolloutRefErrors(objs, r) {
				t.Errorf("%s: Rollout %s: %v", b, r.Name, err)
			}
		}
		for _, v := range all[*vpav1.VerticalPodAutoscaler](objs) {
			ref := v.Spec.TargetRef
			d := named[*appsv1.Deployment](objs, ref.Name)
			if ref.Kind != "Deployment" || d == nil {
				t.Errorf("%s: VerticalPodAutoscaler %s: target %s %s is not in the build", b, v.Name, ref.Kind, ref.Name)
				continue
			}
			for _, cp := range v.Spec.ResourcePolicy.ContainerPolicies {
				if !slices.ContainsFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == cp.ContainerName }) {
					t.Errorf("%s: VerticalPodAutoscaler %s: container %s is not in Deployment %s", b, v.Name, cp.ContainerName, d.Name)
				}
			}
		}
		for _, sm := range all[*monitoringv1.ServiceMonitor](objs) {
			sel := mustSelector(t, &sm.Spec.Selector)
			n := 0
			for _, s := range all[*corev1.Service](objs) {
				if !sel.Matches(labels.Set(s.Labels)) {
					continue
				}
				n++
				for _, ep := range sm.Spec.Endpoints {
					if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
						t.Errorf("%s: ServiceMonitor %s: Service %s has no port %q", b, sm.Name, s.Name, ep.Port)
					}
				}
			}
			if n == 0 {
				t.Errorf("%s: ServiceMonitor %s: selector matches no Service", b, sm.Name)
			}
		}
		for _, w := range workloads(t, objs) {
			for _, err := range podRefErrors(objs, w) {
				t.Errorf("%s: %s: %v", b, w.owner, err)
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

// TestModelRegistry: the registry volume is mounted at /models, read-only
// in every ranking pod and read-write in the trainer.
func TestModelRegistry(t *testing.T) {
	for _, b := range appBuilds {
		var sawRanking, sawTrainer bool
		for _, w := range workloads(t, build(t, b)) {
			for _, c := range w.containers {
				bin := binaryOf(c.Image)
				if bin != "ranking" && bin != "trainer" {
					continue
				}
				m := mountOf(w, c, "models")
				switch {
				case m == nil:
					t.Errorf("%s: %s: the models claim is not mounted", b, w.owner)
				case m.MountPath != "/models":
					t.Errorf("%s: %s: models mounted at %s, want /models", b, w.owner, m.MountPath)
				case bin == "ranking" && !m.ReadOnly:
					t.Errorf("%s: %s: ranking mounts the model registry read-write, want read-only", b, w.owner)
				case bin == "trainer" && m.ReadOnly:
					t.Errorf("%s: %s: the trainer mounts the model registry read-only, want read-write", b, w.owner)
				}
				sawRanking = sawRanking || bin == "ranking"
				sawTrainer = sawTrainer || bin == "trainer"
			}
		}
		if !sawRanking {
			t.Errorf("%s: no ranking pod", b)
		}
		if b == prod && !sawTrainer {
			t.Errorf("%s: no trainer pod", b)
		}
	}
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
// featurecompute on its consumer lag (an External metric), and every VPA
// only recommends.
func TestAutoscaling(t *testing.T) {
	for _, b := range []string{base, dev, prod, gpu} {
		objs := build(t, b)
		want := map[string]func(autoscalingv2.MetricSpec) bool{
			"ranking": func(m autoscalingv2.MetricSpec) bool {
				return m.Type == autoscalingv2.PodsMetricSourceType && m.Pods != nil && strings.Contains(m.Pods.Metric.Name, "requests_per_second")
			},
			"featurecompute": func(m autoscalingv2.MetricSpec) bool {
				return m.Type == autoscalingv2.ExternalMetricSourceType && m.External != nil && m.External.Metric.Name == "recsys_featurecompute_consumer_lag"
			},
		}
		for name, ok := range want {
			h := named[*autoscalingv2.HorizontalPodAutoscaler](objs, name)
			if h == nil {
				t.Errorf("%s: no HorizontalPodAutoscaler %s", b, name)
				continue
			}
			if !slices.ContainsFunc(h.Spec.Metrics, ok) {
				t.Errorf("%s: HorizontalPodAutoscaler %s: metrics %+v lack the expected one", b, name, h.Spec.Metrics)
			}
			if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
				t.Errorf("%s: HorizontalPodAutoscaler %s: replicas %v..%d", b, name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
			}
		}
	}
	vpas := all[*vpav1.VerticalPodAutoscaler](build(t, prod))
	if len(vpas) == 0 {
		t.Errorf("%s: no VerticalPodAutoscaler", prod)
	}
	for _, v := range vpas {
		if v.Spec.UpdatePolicy == nil || v.Spec.UpdatePolicy.UpdateMode == nil || *v.Spec.UpdatePolicy.UpdateMode != vpav1.UpdateModeOff {
			t.Errorf("%s: VerticalPodAutoscaler %s: updateMode is not \"Off\" (recommendations only)", prod, v.Name)
		}
	}
	sms := all[*monitoringv1.ServiceMonitor](build(t, prod))
	if len(sms) == 0 {
		t.Errorf("%s: no ServiceMonitor", prod)
	}
	for _, sm := range sms {
		for _, ep := range sm.Spec.Endpoints {
			if ep.Path != "/metrics" || !strings.HasPrefix(ep.Port, "http-") {
				t.Errorf("%s: ServiceMonitor %s: scrapes %s on port %s, want /metrics on an http- port", prod, sm.Name, ep.Path, ep.Port)
			}
		}
	}
}

// TestGPUOverlay: in the gpu overlay every ranking pod (v1 and v2) asks for
// a GPU, may run on the tainted GPU nodes and only there, has a priority
// class, and runs ONNX Runtime's CUDA provider; nothing else asks for a GPU,
// and nothing does in prod.
func TestGPUOverlay(t *testing.T) {
	objs := build(t, gpu)
	var rankers int
	for _, d := range all[*appsv1.Deployment](objs) {
		spec := d.Spec.Template.Spec
		gpus := 0
		for _, c := range spec.Containers {
			if q, ok := c.Resources.Limits[gpuResource]; ok {
				gpus += int(q.Value())
			}
		}
		if d.Spec.Template.Labels["app"] != "ranking" {
			if gpus > 0 {
				t.Errorf("gpu: Deployment %s asks for %d GPUs; only ranking should", d.Name, gpus)
			}
			continue
		}
		rankers++
		if gpus < 1 {
			t.Errorf("gpu: Deployment %s: no %s limit", d.Name, gpuResource)
		}
		if !toleratesGPUTaint(spec.Tolerations) {
			t.Errorf("gpu: Deployment %s: tolerations %+v do not tolerate the %s:NoSchedule taint", d.Name, spec.Tolerations, gpuResource)
		}
		if len(spec.NodeSelector) == 0 {
			t.Errorf("gpu: Deployment %s: no nodeSelector for GPU nodes", d.Name)
		}
		if spec.PriorityClassName == "" || named[*schedulingv1.PriorityClass](objs, spec.PriorityClassName) == nil {
			t.Errorf("gpu: Deployment %s: priority class %q is not in the build", d.Name, spec.PriorityClassName)
		}
		if p := lastFlag(spec.Containers[0].Args, "execution-provider"); p != "cuda" {
			t.Errorf("gpu: Deployment %s: args %q run execution provider %q, want cuda (the last -execution-provider wins)", d.Name, spec.Containers[0].Args, p)
		}
	}
	if rankers < 1 {
		t.Error("gpu: no ranking Deployment")
	}
	for _, d := range all[*appsv1.Deployment](build(t, prod)) {
		if _, ok := d.Spec.Template.Spec.Containers[0].Resources.Limits[gpuResource]; ok {
			t.Errorf("prod: Deployment %s asks for a GPU; only the gpu overlay should", d.Name)
		}
	}
}

// lastFlag returns the value of the last --name=value in args: the one the
// flag package keeps.
func lastFlag(args []string, name string) string {
	v := ""
	for _, a := range args {
		for _, prefix := range []string{"--" + name + "=", "-" + name + "="} {
			if rest, ok := strings.CutPrefix(a, prefix); ok {
				v = rest
			}
		}
	}
	return v
}

func toleratesGPUTaint(ts []corev1.Toleration) bool {
	taint := corev1.Taint{Key: string(gpuResource), Value: "present", Effect: corev1.TaintEffectNoSchedule}
	for _, tol := range ts {
		if tol.ToleratesTaint(klog.Background(), &taint, false) {
			return true
		}
	}
	return false
}

// TestKnativeService: ranking's Knative Service autoscales on requests and
// runs the very container of the ranking Deployment (copied by the
// kustomization's replacements).
func TestKnativeService(t *testing.T) {
	objs := build(t, knative)
	ks := named[*knservingv1.Service](objs, "ranking")
	if ks == nil {
		t.Fatal("knative: no Knative Service ranking")
	}
	ann := ks.Spec.Template.Annotations
	if ann["autoscaling.knative.dev/class"] != "kpa.autoscaling.knative.dev" {
		t.Errorf("knative: autoscaling class %q, want the KPA", ann["autoscaling.knative.dev/class"])
	}
	if m := ann["autoscaling.knative.dev/metric"]; m != "rps" && m != "concurrency" {
		t.Errorf("knative: autoscaling metric %q, want a request-based one (rps or concurrency)", m)
	}
	if ann["autoscaling.knative.dev/target"] == "" {
		t.Error("knative: no autoscaling target")
	}
	for _, d := range all[*appsv1.Deployment](objs) {
		if d.Spec.Template.Labels["app"] == "ranking" {
			t.Errorf("knative: Deployment %s still runs ranking beside the Knative Service", d.Name)
		}
	}
	// The base's Deployment, whose container the Knative Service copies.
	dep := named[*appsv1.Deployment](build(t, base), "ranking")
	if dep == nil {
		t.Fatal("base: no Deployment ranking")
	}
	want, got := dep.Spec.Template.Spec.Containers[0], ks.Spec.Template.Spec.Containers[0]
	if want.Image != got.Image || !slices.Equal(want.Args, got.Args) || !want.Resources.Limits.Cpu().Equal(*got.Resources.Limits.Cpu()) ||
		len(want.Env) != len(got.Env) || len(want.VolumeMounts) != len(got.VolumeMounts) {
		t.Errorf("knative: ranking container differs from the Deployment's:\n got  image %s args %q env %d mounts %d\n want image %s args %q env %d mounts %d",
			got.Image, got.Args, len(got.Env), len(got.VolumeMounts), want.Image, want.Args, len(want.Env), len(want.VolumeMounts))
	}
}

// TestTrainingWorkflow: the pipeline is data-prep -> train -> evaluate ->
// publish -> canary, with the trainer image training, an exit handler that
// rolls back and applies retention, and the CronWorkflow and the Workflow
// run that template.
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
	dag := tpl[wt.Spec.Entrypoint].DAG
	if dag == nil {
		t.Fatalf("WorkflowTemplate train-model: entrypoint %q is not a DAG template", wt.Spec.Entrypoint)
	}
	after := map[string][]string{}
	for _, task := range dag.Tasks {
		after[task.Name] = task.Dependencies
	}
	steps := []string{"data-prep", "train", "evaluate", "publish", "canary"}
	for i, s := range steps {
		deps, ok := after[s]
		var want []string
		if i > 0 {
			want = []string{steps[i-1]}
		}
		if !ok || !slices.Equal(deps, want) {
			t.Errorf("WorkflowTemplate train-model: task %s depends on %q, want %q", s, deps, want)
		}
	}
	if exit := tpl[wt.Spec.OnExit]; exit == nil || exit.Steps == nil {
		t.Errorf("WorkflowTemplate train-model: onExit %q is no steps template (rollback, retention)", wt.Spec.OnExit)
	} else {
		var ran []string
		for _, group := range exit.Steps {
			for _, st := range group.Steps {
				ran = append(ran, st.Template)
			}
		}
		if !slices.Contains(ran, "set-arms") || !slices.Contains(ran, "retention") {
			t.Errorf("WorkflowTemplate train-model: the exit handler runs %q, want the rollback (set-arms) and retention", ran)
		}
	}
	images := map[string]string{}
	for _, w := range workloads(t, objs) {
		if name, ok := strings.CutPrefix(w.owner, "WorkflowTemplate train-model template "); ok {
			images[name] = binaryOf(w.containers[0].Image)
		}
	}
	for task, bin := range map[string]string{"data-prep": "ingest", "train": "trainer"} {
		if images[task] != bin {
			t.Errorf("WorkflowTemplate train-model: template %s runs %q, want the %s image", task, images[task], bin)
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
