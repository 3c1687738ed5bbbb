package manifeststest

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestKustomizationsBuild builds every kustomization under deploy/ and
// istio/ with the kustomize Go API and decodes every object it produces
// strictly into its upstream type. Components cannot build alone; each must
// be used by an overlay.
func TestKustomizationsBuild(t *testing.T) {
	all := kustomizations(t)
	for _, want := range append(append([]string{}, appBuilds...), istioDir) {
		if all[want] != "Kustomization" {
			t.Errorf("%s: want a Kustomization there (the tests name it)", want)
		}
	}
	for _, dir := range sortedKeys(all) {
		if all[dir] == "Component" {
			continue
		}
		t.Run(dir, func(t *testing.T) {
			if objs := build(t, dir); len(objs) == 0 {
				t.Errorf("kustomize build %s: no objects", dir)
			}
		})
	}
}

// TestComponentsAreUsed fails for a component no overlay includes: it
// would never be built, so never checked.
func TestComponentsAreUsed(t *testing.T) {
	all := kustomizations(t)
	used := map[string]bool{}
	for _, dir := range sortedKeys(all) {
		if all[dir] == "Component" {
			continue
		}
		for _, c := range kustomizationList(t, dir, "components") {
			used[cleanJoin(dir, c)] = true
		}
	}
	for _, dir := range sortedKeys(all) {
		if all[dir] == "Component" && !used[dir] {
			t.Errorf("component %s is used by no kustomization", dir)
		}
	}
}

// TestLooseFilesDecode decodes the manifests that no kustomization holds.
func TestLooseFilesDecode(t *testing.T) {
	for _, f := range looseFiles {
		if objs := loadFile(t, f); len(objs) == 0 {
			t.Errorf("%s: no objects", f)
		}
	}
}

// TestNamespace: every namespaced object lands in namespace recsys, and the
// namespace itself has sidecar injection on (mTLS and routing need it).
func TestNamespace(t *testing.T) {
	clusterScoped := map[string]bool{"Namespace": true, "PriorityClass": true}
	for _, dir := range append(append([]string{}, appBuilds...), istioDir) {
		for _, o := range build(t, dir) {
			if !clusterScoped[o.kind] && o.namespace != namespace {
				t.Errorf("%s: namespace %q, want %q", o, o.namespace, namespace)
			}
		}
	}
	for _, dir := range appBuilds {
		ns := named[*corev1.Namespace](build(t, dir), namespace)
		if ns == nil {
			t.Errorf("%s: no Namespace %s", dir, namespace)
			continue
		}
		if ns.Labels["istio-injection"] != "enabled" {
			t.Errorf("%s: Namespace %s labels %v, want istio-injection=enabled", dir, namespace, ns.Labels)
		}
	}
}

// TestStrictDecodeRejects shows that the decoder used above fails on a
// field a custom resource's upstream type does not have, deep inside each
// kind, and on a field name in the wrong case: without it, the tests above
// could not fail. (The Kubernetes kinds are kubernetes-validate's, in make
// validate.)
func TestStrictDecodeRejects(t *testing.T) {
	cases := []struct {
		build, kind, name string
		path              string // dot-separated; numbers index lists
		field             string
	}{
		{prod, "VerticalPodAutoscaler", "ranking", "spec.updatePolicy", "mode"},
		{prod, "ServiceMonitor", "recsys", "spec.endpoints.0", "scrapeInterval"},
		{prod, "ServiceMonitor", "recsys", "spec", "PodTargetLabels"},
		{prod, "WorkflowTemplate", "train-model", "spec.templates.0.dag.tasks.1", "dependsOn"},
		{prod, "CronWorkflow", "train-model-nightly", "spec", "cron"},
		{prod, "Rollout", "ranking", "spec.strategy.canary.trafficRouting.istio.destinationRule", "canarySubset"},
		{prod, "Rollout", "ranking", "spec.workloadRef", "scaledown"},
		{prod, "AnalysisTemplate", "ranking-binary-canary", "spec.metrics.0.provider.prometheus", "url"},
		{knative, "Service", "ranking", "spec.template.spec.containers.0", "concurrency"},
		{istioDir, "VirtualService", "ranking", "spec.http.0.route.1", "wieght"},
		{istioDir, "VirtualService", "ranking", "spec.http.0", "mirrorPercent"},
		{istioDir, "VirtualService", "recsys-public", "spec.http.1.headers.request", "strip"},
		{istioDir, "DestinationRule", "ranking", "spec.subsets.0", "label"},
		{istioDir, "DestinationRule", "ranking", "spec.trafficPolicy.outlierDetection", "ejectionTime"},
		{istioDir, "AuthorizationPolicy", "ranking-from-web", "spec.rules.0.from.0.source", "principal"},
		{istioDir, "PeerAuthentication", "default", "spec.mtls", "level"},
		{istioDir, "Gateway", "recsys", "spec.servers.0.tls", "secretName"},
	}
	for _, c := range cases {
		t.Run(c.kind+"/"+c.path+"."+c.field, func(t *testing.T) {
			o := find(t, build(t, c.build), c.kind, c.name)
			var doc map[string]any
			if err := json.Unmarshal(o.raw, &doc); err != nil {
				t.Fatal(err)
			}
			at := walk(t, doc, c.path)
			at[c.field] = "x"
			raw, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := decodeStrict(raw); err == nil {
				t.Errorf("decodeStrict(%s with %s.%s) = nil error, want one for the unknown field", o, c.path, c.field)
			}
		})
	}
}

func find(t testing.TB, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range objs {
		if o.kind == kind && o.name == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the build", kind, name)
	return object{}
}

// walk follows a dot-separated path of map keys and list indexes.
func walk(t testing.TB, doc map[string]any, path string) map[string]any {
	t.Helper()
	var cur any = doc
	if path != "" {
		for _, p := range strings.Split(path, ".") {
			switch v := cur.(type) {
			case map[string]any:
				cur = v[p]
			case []any:
				i, err := strconv.Atoi(p)
				if err != nil || i >= len(v) {
					t.Fatalf("path %s: bad index %q", path, p)
				}
				cur = v[i]
			default:
				t.Fatalf("path %s: cannot enter %T at %q", path, cur, p)
			}
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		t.Fatalf("path %s: %T, want an object", path, cur)
	}
	return m
}
