package manifeststest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	rolloutsv1 "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	"github.com/golang/protobuf/jsonpb" //nolint:staticcheck // Istio's own JSON decoding; see decodeStrict
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	vpav1 "k8s.io/autoscaler/vertical-pod-autoscaler/pkg/apis/autoscaling.k8s.io/v1"
	knservingv1 "knative.dev/serving/pkg/apis/serving/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The kustomizations a cluster applies, relative to the repository root.
// make validate builds every kustomization with the kustomize CLI and checks
// the Kubernetes kinds with kubernetes-validate; these tests build the same
// ones with the kustomize Go API for the checks no stock tool makes.
const (
	base     = "deploy/base"
	dev      = "deploy/overlays/dev"
	prod     = "deploy/overlays/prod"
	gpu      = "deploy/overlays/gpu"
	knative  = "deploy/overlays/knative"
	istioDir = "istio"
)

// appBuilds are the deploy/ kustomizations a cluster runs; meshBuilds are
// those applied together with istio/ (the knative overlay is not: Knative
// routes ranking itself). Every object of deploy/ and istio/ is in one of
// them or in looseFiles.
var (
	appBuilds  = []string{base, dev, prod, gpu, knative}
	meshBuilds = []string{dev, prod, gpu}
)

// looseFiles are manifests outside any kustomization (created, not
// applied).
var looseFiles = []string{"deploy/components/training/workflow.yaml"}

// namespace is where every recsys object lives.
const namespace = "recsys"

// object is one manifest of a build: its JSON and its upstream Go type.
type object struct {
	source, kind, name, namespace string
	raw                           []byte
	typed                         any // pointer to the upstream type
}

func (o object) String() string { return fmt.Sprintf("%s: %s %s", o.source, o.kind, o.name) }

// kind says how to decode one apiVersion/kind. builtin marks the
// Kubernetes API's own kinds: kubernetes-validate checks those strictly
// (make validate), so here they are only decoded. No stock tool has the
// custom resources' schemas offline, so those are decoded strictly here.
// spec, for Istio types, is the proto message of the spec: Istio's
// generated UnmarshalJSON accepts unknown fields, so the spec is decoded
// again by golang/protobuf's jsonpb (which reads durations like "400ms"
// as Istio does) with unknown fields refused.
type kind struct {
	new     func() any
	builtin bool
	spec    func(typed any) proto.Message
}

func builtin[T any]() kind { return kind{builtin: true, new: func() any { return new(T) }} }
func custom[T any]() kind  { return kind{new: func() any { return new(T) }} }

// kinds lists every type the manifests may use; a kind missing here fails
// the decode.
var kinds = map[string]kind{
	"v1/Namespace":                                builtin[corev1.Namespace](),
	"v1/ServiceAccount":                           builtin[corev1.ServiceAccount](),
	"v1/Service":                                  builtin[corev1.Service](),
	"v1/ConfigMap":                                builtin[corev1.ConfigMap](),
	"v1/PersistentVolumeClaim":                    builtin[corev1.PersistentVolumeClaim](),
	"apps/v1/Deployment":                          builtin[appsv1.Deployment](),
	"batch/v1/Job":                                builtin[batchv1.Job](),
	"batch/v1/CronJob":                            builtin[batchv1.CronJob](),
	"autoscaling/v2/HorizontalPodAutoscaler":      builtin[autoscalingv2.HorizontalPodAutoscaler](),
	"policy/v1/PodDisruptionBudget":               builtin[policyv1.PodDisruptionBudget](),
	"networking.k8s.io/v1/NetworkPolicy":          builtin[networkingv1.NetworkPolicy](),
	"scheduling.k8s.io/v1/PriorityClass":          builtin[schedulingv1.PriorityClass](),
	"rbac.authorization.k8s.io/v1/Role":           builtin[rbacv1.Role](),
	"rbac.authorization.k8s.io/v1/RoleBinding":    builtin[rbacv1.RoleBinding](),
	"autoscaling.k8s.io/v1/VerticalPodAutoscaler": custom[vpav1.VerticalPodAutoscaler](),
	"argoproj.io/v1alpha1/Rollout":                custom[rolloutsv1.Rollout](),
	"argoproj.io/v1alpha1/AnalysisTemplate":       custom[rolloutsv1.AnalysisTemplate](),
	"argoproj.io/v1alpha1/AnalysisRun":            custom[rolloutsv1.AnalysisRun](),
	"monitoring.coreos.com/v1/ServiceMonitor":     custom[monitoringv1.ServiceMonitor](),
	"serving.knative.dev/v1/Service":              custom[knservingv1.Service](),
	"argoproj.io/v1alpha1/Workflow":               custom[wfv1.Workflow](),
	"argoproj.io/v1alpha1/WorkflowTemplate":       custom[wfv1.WorkflowTemplate](),
	"argoproj.io/v1alpha1/CronWorkflow":           custom[wfv1.CronWorkflow](),
	"security.istio.io/v1/PeerAuthentication": {new: func() any { return &istiosecurity.PeerAuthentication{} },
		spec: func(o any) proto.Message { return &o.(*istiosecurity.PeerAuthentication).Spec }},
	"security.istio.io/v1/AuthorizationPolicy": {new: func() any { return &istiosecurity.AuthorizationPolicy{} },
		spec: func(o any) proto.Message { return &o.(*istiosecurity.AuthorizationPolicy).Spec }},
	"networking.istio.io/v1/DestinationRule": {new: func() any { return &istionetworking.DestinationRule{} },
		spec: func(o any) proto.Message { return &o.(*istionetworking.DestinationRule).Spec }},
	"networking.istio.io/v1/VirtualService": {new: func() any { return &istionetworking.VirtualService{} },
		spec: func(o any) proto.Message { return &o.(*istionetworking.VirtualService).Spec }},
	"networking.istio.io/v1/Gateway": {new: func() any { return &istionetworking.Gateway{} },
		spec: func(o any) proto.Message { return &o.(*istionetworking.Gateway).Spec }},
}

// decodeStrict decodes one manifest (JSON) into its upstream type. For a
// custom resource, unknown and duplicate fields are errors, and so are
// field names in the wrong case.
func decodeStrict(raw []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return nil, err
	}
	k, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("no upstream Go type registered for apiVersion %q kind %q", tm.APIVersion, tm.Kind)
	}
	typed := k.new()
	if k.builtin {
		return typed, json.Unmarshal(raw, typed)
	}
	strict, err := kjson.UnmarshalStrict(raw, typed)
	if err != nil || len(strict) > 0 {
		return nil, errors.Join(append(strict, err)...)
	}
	if k.spec != nil {
		var envelope struct {
			Spec json.RawMessage `json:"spec"`
		}
		if err := json.Unmarshal(raw, &envelope); err != nil || len(envelope.Spec) == 0 {
			return typed, err
		}
		msg := proto.Clone(k.spec(typed))
		proto.Reset(msg)
		if err := (&jsonpb.Unmarshaler{}).Unmarshal(bytes.NewReader(envelope.Spec), protoadapt.MessageV1Of(msg)); err != nil {
			return nil, fmt.Errorf("spec: %w", err)
		}
	}
	return typed, nil
}

// repoRoot is the repository root: this package is deploy/manifeststest.
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readRepoFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type buildResult struct {
	objects []object
	err     error
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]buildResult{}
)

// build runs kustomize on dir (relative to the repository root) and decodes
// every object strictly; every test reads the same cached builds.
func build(t testing.TB, dir string) []object {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	r, ok := buildCache[dir]
	if !ok {
		r.objects, r.err = kustomize(repoRoot(t), dir)
		buildCache[dir] = r
	}
	if r.err != nil {
		t.Fatalf("kustomize build %s: %v", dir, r.err)
	}
	return r.objects
}

func kustomize(root, dir string) ([]object, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), filepath.Join(root, dir))
	if err != nil {
		return nil, err
	}
	var objs []object
	var errs []error
	for _, r := range m.Resources() {
		raw, err := r.MarshalJSON()
		if err == nil {
			var o object
			o, err = newObject(dir, raw)
			objs = append(objs, o)
		}
		errs = append(errs, err)
	}
	return objs, errors.Join(errs...)
}

func newObject(source string, raw []byte) (object, error) {
	var meta struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name, GenerateName, Namespace string
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return object{}, err
	}
	o := object{source: source, kind: meta.Kind, name: cmpOr(meta.Metadata.Name, meta.Metadata.GenerateName), namespace: meta.Metadata.Namespace, raw: raw}
	typed, err := decodeStrict(raw)
	if err != nil {
		return o, fmt.Errorf("%s: strict decode: %w", o, err)
	}
	o.typed = typed
	return o, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// loadFile decodes each document of a multi-document YAML file (relative
// to the root) that no kustomization holds.
func loadFile(t testing.TB, file string) []object {
	t.Helper()
	var objs []object
	for i, doc := range bytes.Split(readRepoFile(t, file), []byte("\n---")) {
		raw, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			t.Fatalf("%s document %d: %v", file, i, err)
		}
		if string(raw) == "null" {
			continue // comments only
		}
		o, err := newObject(file, raw)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	return objs
}

// all returns the typed objects of type T, in build order.
func all[T any](objs []object) []T {
	var out []T
	for _, o := range objs {
		if v, ok := o.typed.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// named returns the object of type T with that name, or nil.
func named[T interface{ GetName() string }](objs []object, name string) T {
	for _, v := range all[T](objs) {
		if v.GetName() == name {
			return v
		}
	}
	var zero T
	return zero
}

// configMapValue resolves a configMapKeyRef within a build.
func configMapValue(objs []object, ref *corev1.ConfigMapKeySelector) (string, error) {
	cm := named[*corev1.ConfigMap](objs, ref.Name)
	if cm == nil {
		return "", fmt.Errorf("ConfigMap %q is not in the build", ref.Name)
	}
	v, ok := cm.Data[ref.Key]
	if !ok {
		return "", fmt.Errorf("ConfigMap %q has no key %q", ref.Name, ref.Key)
	}
	return v, nil
}

// recsysConfig returns the recsys-config ConfigMap of a build (its name
// carries a content hash).
func recsysConfig(t testing.TB, objs []object) *corev1.ConfigMap {
	t.Helper()
	for _, cm := range all[*corev1.ConfigMap](objs) {
		if strings.HasPrefix(cm.Name, "recsys-config-") {
			return cm
		}
	}
	t.Fatal("no recsys-config ConfigMap in the build")
	return nil
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestBuildsAndNamespace: every component is used by a kustomization (make
// validate builds components only through them), every namespaced object
// lands in namespace recsys, and that namespace has sidecar injection on
// (mTLS and routing need it).
func TestBuildsAndNamespace(t *testing.T) {
	root := repoRoot(t)
	kustKinds, used := map[string]string{}, map[string]bool{}
	for _, top := range []string{"deploy", "istio"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(p string, d os.DirEntry, err error) error {
			if err != nil || d.Name() != "kustomization.yaml" {
				return err
			}
			var k struct {
				Kind       string   `json:"kind"`
				Components []string `json:"components"`
			}
			data, err := os.ReadFile(p)
			if err == nil {
				err = yaml.Unmarshal(data, &k)
			}
			rel, _ := filepath.Rel(root, filepath.Dir(p))
			kustKinds[filepath.ToSlash(rel)] = k.Kind
			for _, c := range k.Components {
				used[path.Clean(path.Join(filepath.ToSlash(rel), c))] = true
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for dir, k := range kustKinds {
		if k == "Component" && !used[dir] {
			t.Errorf("component %s is used by no kustomization, so nothing builds or checks it", dir)
		}
	}
	clusterScoped := map[string]bool{"Namespace": true, "PriorityClass": true}
	for _, dir := range append(slices.Clone(appBuilds), istioDir) {
		for _, o := range build(t, dir) {
			if !clusterScoped[o.kind] && o.namespace != namespace {
				t.Errorf("%s: namespace %q, want %q", o, o.namespace, namespace)
			}
		}
	}
	for _, dir := range appBuilds {
		if ns := named[*corev1.Namespace](build(t, dir), namespace); ns == nil || ns.Labels["istio-injection"] != "enabled" {
			t.Errorf("%s: no Namespace %s labelled istio-injection=enabled", dir, namespace)
		}
	}
}

// TestStrictDecodeRejects shows the decoder failing on a field a custom
// resource's type lacks, through each of its paths (sigs.k8s.io/json's
// strict decode, which also refuses a field name in the wrong case, and
// the second, protobuf decode of an Istio spec): without it, the strict
// decoding above could not fail.
func TestStrictDecodeRejects(t *testing.T) {
	cases := []struct{ build, kind, name, path, field string }{
		{prod, "Rollout", "ranking", "spec.strategy.canary.trafficRouting.istio.destinationRule", "canarySubset"},
		{prod, "ServiceMonitor", "recsys", "spec", "PodTargetLabels"},
		{istioDir, "VirtualService", "ranking", "spec.http.0", "mirrorPercent"},
		{istioDir, "AuthorizationPolicy", "ranking-from-web", "spec.rules.0.from.0.source", "principal"},
	}
	for _, c := range cases {
		i := slices.IndexFunc(build(t, c.build), func(o object) bool { return o.kind == c.kind && o.name == c.name })
		if i < 0 {
			t.Fatalf("%s: no %s %s", c.build, c.kind, c.name)
		}
		var doc any
		json.Unmarshal(build(t, c.build)[i].raw, &doc)
		at := doc
		for _, p := range strings.Split(c.path, ".") {
			if list, ok := at.([]any); ok {
				at = list[0] // every index in the cases is 0
			} else {
				at = at.(map[string]any)[p]
			}
		}
		at.(map[string]any)[c.field] = "x"
		raw, _ := json.Marshal(doc)
		if _, err := decodeStrict(raw); err == nil {
			t.Errorf("decodeStrict(%s %s with %s.%s) = nil error, want one for the unknown field", c.kind, c.name, c.path, c.field)
		}
	}
}
