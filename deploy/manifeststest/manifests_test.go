package manifeststest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
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

// The kustomizations that are applied to a cluster, relative to the
// repository root. TestEveryKustomizationBuilds builds every other one too.
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
// routes ranking itself).
var (
	appBuilds  = []string{base, dev, prod, gpu, knative}
	meshBuilds = []string{dev, prod, gpu}
)

// looseFiles are manifests outside any kustomization (created, not
// applied); they are decoded and checked like the rest.
var looseFiles = []string{"deploy/components/training/workflow.yaml"}

// Namespace is where every recsys object lives.
const namespace = "recsys"

// object is one manifest of a build: its JSON and its upstream Go type.
type object struct {
	source     string // kustomization or file it came from
	apiVersion string
	kind       string
	name       string
	namespace  string
	raw        []byte
	typed      any // pointer to the upstream type, decoded strictly
}

func (o object) String() string { return fmt.Sprintf("%s: %s %s", o.source, o.kind, o.name) }

// kind says how to decode one apiVersion/kind.
type kind struct {
	new func() any
	// builtin marks the Kubernetes API's own kinds. kubernetes-validate
	// checks those strictly against the API server's schemas of several
	// Kubernetes versions (make validate), so here they are only decoded,
	// for the cross-checks; no stock tool has the custom resources'
	// schemas offline, so those are decoded strictly here.
	builtin bool
	// spec, for Istio types, is the proto message of the spec. Istio's
	// generated UnmarshalJSON accepts unknown fields, so the spec is decoded
	// a second time by the same decoder (golang/protobuf's jsonpb, which
	// also reads durations like "400ms" as Istio does) with unknown fields
	// refused.
	spec func(typed any) proto.Message
}

// kinds lists every type the manifests may use. A kind missing here fails
// the decode: add its upstream type rather than skipping it.
var kinds = map[string]kind{
	"v1/Namespace":                                {builtin: true, new: func() any { return &corev1.Namespace{} }},
	"v1/ServiceAccount":                           {builtin: true, new: func() any { return &corev1.ServiceAccount{} }},
	"v1/Service":                                  {builtin: true, new: func() any { return &corev1.Service{} }},
	"v1/ConfigMap":                                {builtin: true, new: func() any { return &corev1.ConfigMap{} }},
	"v1/PersistentVolumeClaim":                    {builtin: true, new: func() any { return &corev1.PersistentVolumeClaim{} }},
	"apps/v1/Deployment":                          {builtin: true, new: func() any { return &appsv1.Deployment{} }},
	"batch/v1/Job":                                {builtin: true, new: func() any { return &batchv1.Job{} }},
	"batch/v1/CronJob":                            {builtin: true, new: func() any { return &batchv1.CronJob{} }},
	"autoscaling/v2/HorizontalPodAutoscaler":      {builtin: true, new: func() any { return &autoscalingv2.HorizontalPodAutoscaler{} }},
	"policy/v1/PodDisruptionBudget":               {builtin: true, new: func() any { return &policyv1.PodDisruptionBudget{} }},
	"networking.k8s.io/v1/NetworkPolicy":          {builtin: true, new: func() any { return &networkingv1.NetworkPolicy{} }},
	"scheduling.k8s.io/v1/PriorityClass":          {builtin: true, new: func() any { return &schedulingv1.PriorityClass{} }},
	"rbac.authorization.k8s.io/v1/Role":           {builtin: true, new: func() any { return &rbacv1.Role{} }},
	"rbac.authorization.k8s.io/v1/RoleBinding":    {builtin: true, new: func() any { return &rbacv1.RoleBinding{} }},
	"autoscaling.k8s.io/v1/VerticalPodAutoscaler": {new: func() any { return &vpav1.VerticalPodAutoscaler{} }},
	"argoproj.io/v1alpha1/Rollout":                {new: func() any { return &rolloutsv1.Rollout{} }},
	"argoproj.io/v1alpha1/AnalysisTemplate":       {new: func() any { return &rolloutsv1.AnalysisTemplate{} }},
	"argoproj.io/v1alpha1/AnalysisRun":            {new: func() any { return &rolloutsv1.AnalysisRun{} }},
	"monitoring.coreos.com/v1/ServiceMonitor":     {new: func() any { return &monitoringv1.ServiceMonitor{} }},
	"serving.knative.dev/v1/Service":              {new: func() any { return &knservingv1.Service{} }},
	"argoproj.io/v1alpha1/Workflow":               {new: func() any { return &wfv1.Workflow{} }},
	"argoproj.io/v1alpha1/WorkflowTemplate":       {new: func() any { return &wfv1.WorkflowTemplate{} }},
	"argoproj.io/v1alpha1/CronWorkflow":           {new: func() any { return &wfv1.CronWorkflow{} }},
	"security.istio.io/v1/PeerAuthentication": {
		new:  func() any { return &istiosecurity.PeerAuthentication{} },
		spec: func(o any) proto.Message { return &o.(*istiosecurity.PeerAuthentication).Spec },
	},
	"security.istio.io/v1/AuthorizationPolicy": {
		new:  func() any { return &istiosecurity.AuthorizationPolicy{} },
		spec: func(o any) proto.Message { return &o.(*istiosecurity.AuthorizationPolicy).Spec },
	},
	"networking.istio.io/v1/DestinationRule": {
		new:  func() any { return &istionetworking.DestinationRule{} },
		spec: func(o any) proto.Message { return &o.(*istionetworking.DestinationRule).Spec },
	},
	"networking.istio.io/v1/VirtualService": {
		new:  func() any { return &istionetworking.VirtualService{} },
		spec: func(o any) proto.Message { return &o.(*istionetworking.VirtualService).Spec },
	},
	"networking.istio.io/v1/Gateway": {
		new:  func() any { return &istionetworking.Gateway{} },
		spec: func(o any) proto.Message { return &o.(*istionetworking.Gateway).Spec },
	},
}

// decodeStrict decodes one manifest (JSON) into its upstream type. For a
// custom resource, unknown and duplicate fields are errors, and so are
// field names in the wrong case; a Kubernetes kind is only decoded (make
// validate checks it strictly with kubernetes-validate).
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
	if err != nil {
		return nil, err
	}
	if len(strict) > 0 {
		return nil, errors.Join(strict...)
	}
	if k.spec != nil {
		var envelope struct {
			Spec json.RawMessage `json:"spec"`
		}
		if err := json.Unmarshal(raw, &envelope); err != nil {
			return nil, err
		}
		if len(envelope.Spec) > 0 {
			msg := proto.Clone(k.spec(typed))
			proto.Reset(msg)
			strict := jsonpb.Unmarshaler{AllowUnknownFields: false}
			if err := strict.Unmarshal(bytes.NewReader(envelope.Spec), protoadapt.MessageV1Of(msg)); err != nil {
				return nil, fmt.Errorf("spec: %w", err)
			}
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

type buildResult struct {
	objects []object
	err     error
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]buildResult{}
)

// build runs kustomize on dir (relative to the repository root) and decodes
// every object strictly. Results are cached: every test reads the same
// builds.
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
		if err != nil {
			return nil, err
		}
		o, err := newObject(dir, raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		objs = append(objs, o)
	}
	return objs, errors.Join(errs...)
}

func newObject(source string, raw []byte) (object, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name         string `json:"name"`
			GenerateName string `json:"generateName"`
			Namespace    string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return object{}, err
	}
	o := object{source: source, apiVersion: meta.APIVersion, kind: meta.Kind,
		name: meta.Metadata.Name, namespace: meta.Metadata.Namespace, raw: raw}
	if o.name == "" {
		o.name = meta.Metadata.GenerateName
	}
	typed, err := decodeStrict(raw)
	if err != nil {
		return o, fmt.Errorf("%s: strict decode: %w", o, err)
	}
	o.typed = typed
	return o, nil
}

// loadFile reads a multi-document YAML file (relative to the root) that is
// not part of a kustomization and decodes each document strictly.
func loadFile(t testing.TB, file string) []object {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), file))
	if err != nil {
		t.Fatal(err)
	}
	return loadYAML(t, file, data)
}

// loadYAML decodes each document of a multi-document YAML strictly.
func loadYAML(t testing.TB, source string, data []byte) []object {
	t.Helper()
	var objs []object
	for i, doc := range bytes.Split(data, []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		raw, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			t.Fatalf("%s document %d: %v", source, i, err)
		}
		o, err := newObject(source, raw)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	return objs
}

func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
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

// kustomizations returns every folder under deploy/ and istio/ that holds a
// kustomization.yaml, with its kind (Kustomization or Component).
func kustomizations(t testing.TB) map[string]string {
	t.Helper()
	root := repoRoot(t)
	found := map[string]string{}
	for _, top := range []string{"deploy", "istio"} {
		err := filepath.WalkDir(filepath.Join(root, top), func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			var k struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal(data, &k); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			found[filepath.ToSlash(rel)] = k.Kind
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return found
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// kustomizationList returns a list field (resources, components) of the
// kustomization in dir.
func kustomizationList(t testing.TB, dir, field string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k map[string]any
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	list, _ := k[field].([]any)
	var out []string
	for _, v := range list {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// cleanJoin resolves a path relative to dir (both slash-separated).
func cleanJoin(dir, rel string) string { return path.Clean(path.Join(dir, rel)) }
