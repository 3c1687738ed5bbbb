package manifeststest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	securityapi "istio.io/api/security/v1beta1"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	networkingapi "istio.io/api/networking/v1alpha3"
)

// clientHeaders returns the request headers through which a caller can
// steer ranking: choose an arm or a model, or pass for a mirrored copy.
// They are read from the code, not listed here: every "x-recsys-*",
// "x-model-*" and "x-forwarded-*" literal in ranking's sources and in the
// headers libs/serving passes from REST to gRPC. A header ranking starts to
// read is then one the gateway must strip.
func clientHeaders(t testing.TB) []string {
	t.Helper()
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "services", "ranking", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join(root, "libs", "serving", "http.go"))
	lit := regexp.MustCompile(`"(x-(?:recsys|model|forwarded)-[a-z0-9-]*)"`)
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range lit.FindAllStringSubmatch(string(src), -1) {
			seen[m[1]] = true
		}
	}
	for _, must := range []string{"x-recsys-arm", "x-model-version", "x-forwarded-host"} {
		if !seen[must] {
			t.Errorf("ranking and libs/serving no longer mention %s: update clientHeaders' reading of the code", must)
		}
	}
	return sortedKeys(seen)
}

// headerForms are the names a client sends a header under: as itself
// (gRPC, gRPC-Web, REST) and with grpc-gateway's Grpc-Metadata- prefix,
// which REST passes on to gRPC without it.
func headerForms(h string) []string { return []string{h, "grpc-metadata-" + h} }

// stripErrors says how a forwarding gateway route lets a client header
// through: not removed, set or added by the route, or matched on.
func stripErrors(r *networkingapi.HTTPRoute, headers []string) []error {
	var errs []error
	if len(r.Route) == 0 && r.Mirror == nil && len(r.Mirrors) == 0 {
		return nil // answered by the gateway (directResponse, redirect)
	}
	removed := r.GetHeaders().GetRequest().GetRemove()
	for _, h := range headers {
		for _, form := range headerForms(h) {
			if !slices.ContainsFunc(removed, func(x string) bool { return strings.EqualFold(x, form) }) {
				errs = append(errs, fmt.Errorf("does not remove %s", form))
			}
		}
	}
	errs = append(errs, headerUseErrors(r, headers)...)
	for _, h := range r.GetCorsPolicy().GetAllowHeaders() {
		if slices.ContainsFunc(headers, func(x string) bool {
			return strings.EqualFold(strings.TrimPrefix(strings.ToLower(h), "grpc-metadata-"), x)
		}) {
			errs = append(errs, fmt.Errorf("CORS allows the client header %s", h))
		}
	}
	return errs
}

// headerUseErrors reports a route that matches on, sets or adds one of
// the headers (at route or destination level): the mesh never picks an
// arm or a model.
func headerUseErrors(r *networkingapi.HTTPRoute, headers []string) []error {
	var errs []error
	is := func(name string) bool {
		name = strings.TrimPrefix(strings.ToLower(name), "grpc-metadata-")
		return slices.Contains(headers, name)
	}
	for _, m := range r.Match {
		for name := range m.Headers {
			if is(name) {
				errs = append(errs, fmt.Errorf("matches on %s", name))
			}
		}
		for name := range m.WithoutHeaders {
			if is(name) {
				errs = append(errs, fmt.Errorf("matches on the absence of %s", name))
			}
		}
	}
	ops := []*networkingapi.Headers_HeaderOperations{r.GetHeaders().GetRequest()}
	for _, d := range r.Route {
		ops = append(ops, d.GetHeaders().GetRequest())
	}
	for _, op := range ops {
		for name := range op.GetSet() {
			if is(name) {
				errs = append(errs, fmt.Errorf("sets %s", name))
			}
		}
		for name := range op.GetAdd() {
			if is(name) {
				errs = append(errs, fmt.Errorf("adds %s", name))
			}
		}
	}
	return errs
}

// TestGatewayStripsClientHeaders: no header through which a client could
// choose its arm or model, or pass for a mirrored copy, reaches ranking
// through the gateway. Every route of a VirtualService bound to a gateway
// that forwards a request (to ranking, to feedback, or to web, whose edge
// passes REST headers on to ranking) removes each such header in both its
// forms before forwarding or mirroring, sets, adds and matches none, and
// CORS does not let a browser send them.
func TestGatewayStripsClientHeaders(t *testing.T) {
	headers := clientHeaders(t)
	public := 0
	for _, vs := range all[*istionetworking.VirtualService](build(t, istioDir)) {
		if len(vs.Spec.Gateways) == 0 || slices.Equal(vs.Spec.Gateways, []string{"mesh"}) {
			continue
		}
		public++
		for _, r := range vs.Spec.Http {
			for _, err := range stripErrors(r, headers) {
				t.Errorf("VirtualService %s route %q: %v", vs.Name, r.Name, err)
			}
		}
	}
	if public == 0 {
		t.Error("istio: no VirtualService bound to a gateway")
	}
	leaky := &networkingapi.HTTPRoute{Route: []*networkingapi.HTTPRouteDestination{{Destination: &networkingapi.Destination{Host: "ranking"}}},
		Headers:    &networkingapi.Headers{Request: &networkingapi.Headers_HeaderOperations{Remove: []string{"x-recsys-arm"}}},
		CorsPolicy: &networkingapi.CorsPolicy{AllowHeaders: []string{"X-Recsys-Arm"}}}
	if errs := stripErrors(leaky, headers); len(errs) < 3 {
		t.Errorf("stripErrors(a route removing only x-recsys-arm, CORS allowing it) = %v, want the missing removals and the CORS header", errs)
	}
}

// TestMeshNeverPicksAnArm: no route anywhere, in the mesh or at the
// gateway, matches on, sets or adds a header that picks an arm or a model.
// The experiment alone assigns arms, sticky per user
// (docs/architecture.md, "Rollout: arms, subsets and the mesh").
func TestMeshNeverPicksAnArm(t *testing.T) {
	headers := clientHeaders(t)
	for _, vs := range all[*istionetworking.VirtualService](build(t, istioDir)) {
		for _, r := range vs.Spec.Http {
			for _, err := range headerUseErrors(r, headers) {
				t.Errorf("VirtualService %s route %q: %v", vs.Name, r.Name, err)
			}
		}
	}
	arm := &networkingapi.HTTPRoute{Route: []*networkingapi.HTTPRouteDestination{{Destination: &networkingapi.Destination{Host: "ranking"},
		Headers: &networkingapi.Headers{Request: &networkingapi.Headers_HeaderOperations{Set: map[string]string{"x-recsys-arm": "treatment"}}}}}}
	if len(headerUseErrors(arm, headers)) == 0 {
		t.Error("headerUseErrors(a destination setting x-recsys-arm) = none, want one")
	}
}

// internalMethods are the RPCs that stay inside: raw inference, the model
// list and experiment reports (docs/architecture.md, "Rollout: arms, subsets and the mesh").
var internalMethods = []string{
	"recsys.ranking.v1.InferenceService.*",
	"recsys.ranking.v1.ModelService.*",
	"recsys.feedback.v1.FeedbackService.GetExperimentReport",
}

// internalRequests returns the gRPC(-Web) and REST requests of the internal
// methods, read from the protos (the REST path from google.api.http, with
// each variable filled in).
func internalRequests(t testing.TB) []request {
	t.Helper()
	var out []request
	variable := regexp.MustCompile(`\{[^}]*\}`)
	for _, spec := range internalMethods {
		i := strings.LastIndex(spec, ".")
		svcName, method := spec[:i], spec[i+1:]
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(svcName))
		if err != nil {
			t.Fatalf("internal method %s: %v", spec, err)
		}
		methods := d.(protoreflect.ServiceDescriptor).Methods()
		for i := range methods.Len() {
			m := methods.Get(i)
			if method != "*" && string(m.Name()) != method {
				continue
			}
			out = append(out, request{path: "/" + svcName + "/" + string(m.Name()), method: "POST"})
			rule, _ := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
			switch p := rule.GetPattern().(type) {
			case *annotations.HttpRule_Get:
				out = append(out, request{path: variable.ReplaceAllString(p.Get, "x"), method: "GET"})
			case *annotations.HttpRule_Post:
				out = append(out, request{path: variable.ReplaceAllString(p.Post, "x"), method: "POST"})
			}
		}
	}
	if len(out) < 6 {
		t.Fatalf("internal requests %v: fewer than the protos should give", out)
	}
	return out
}

// TestInternalPathsAreRefused: through the gateway, every internal method
// (gRPC-Web and REST) is answered by the gateway itself with an error,
// before any route could forward it; and the gateway's identity may not
// call them on any workload, so a wrong route would still be refused.
func TestInternalPathsAreRefused(t *testing.T) {
	reqs := internalRequests(t)
	istio := build(t, istioDir)
	public := named[*istionetworking.VirtualService](istio, "recsys-public")
	if public == nil {
		t.Fatal("istio: no VirtualService recsys-public")
	}
	for _, req := range reqs {
		for _, r := range public.Spec.Http {
			may, certain := mayMatch(r, req)
			if !may {
				continue
			}
			if !certain || r.DirectResponse == nil || r.DirectResponse.Status < 400 {
				t.Errorf("gateway: %s %s may take route %q, which forwards it; want a refusal first", req.method, req.path, r.Name)
			}
			break
		}
	}
	for _, p := range all[*istiosecurity.AuthorizationPolicy](istio) {
		for i, rule := range p.Spec.Rules {
			if !slices.ContainsFunc(rule.From, func(f *securityapi.Rule_From) bool {
				return slices.Contains(f.GetSource().GetPrincipals(), ingressPrincipal)
			}) {
				continue
			}
			for _, req := range reqs {
				if ruleAllows(rule, req) {
					t.Errorf("AuthorizationPolicy %s rule %d lets the gateway call %s %s", p.Name, i, req.method, req.path)
				}
			}
		}
	}
}

// ruleAllows reports whether an authorization rule's operations allow the
// request (Istio path patterns: exact, "prefix*", "*suffix").
func ruleAllows(rule *securityapi.Rule, req request) bool {
	if len(rule.To) == 0 {
		return true
	}
	for _, to := range rule.To {
		op := to.GetOperation()
		if len(op.GetMethods()) > 0 && !slices.Contains(op.GetMethods(), req.method) {
			continue
		}
		if len(op.GetPaths()) > 0 && !slices.ContainsFunc(op.GetPaths(), func(p string) bool { return istioPathMatches(p, req.path) }) {
			continue
		}
		if slices.ContainsFunc(op.GetNotPaths(), func(p string) bool { return istioPathMatches(p, req.path) }) {
			continue
		}
		return true
	}
	return false
}

func istioPathMatches(pattern, path string) bool {
	switch {
	case pattern == "*":
		return true
	case strings.HasSuffix(pattern, "*"):
		return strings.HasPrefix(path, strings.TrimSuffix(pattern, "*"))
	case strings.HasPrefix(pattern, "*"):
		return strings.HasSuffix(path, strings.TrimPrefix(pattern, "*"))
	}
	return pattern == path
}

// callsService reports whether the pods running as service account sa are
// configured with the address of Service callee (an arg or an environment
// value naming callee:port or callee.namespace...).
func callsService(t testing.TB, objs []object, sa, callee string) bool {
	t.Helper()
	names := func(v string) bool {
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimPrefix(strings.TrimSpace(part), "--")
			if _, rest, ok := strings.Cut(part, "="); ok {
				part = rest
			}
			if strings.HasPrefix(part, callee+":") || strings.HasPrefix(part, callee+".") {
				return true
			}
		}
		return false
	}
	for _, w := range workloads(t, objs) {
		if w.serviceAccount != sa {
			continue
		}
		for _, c := range w.containers {
			if slices.ContainsFunc(c.Args, names) || slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return names(e.Value) }) {
				return true
			}
		}
	}
	return false
}

// externalPeers are the identities from outside the namespace, as
// authorization.yaml names them (principal) and networkpolicy.yaml selects
// them (namespace, pod labels).
var externalPeers = map[string]struct {
	namespace string
	labels    map[string]string
}{
	ingressPrincipal: {"istio-system", map[string]string{"istio": "ingressgateway"}},
	"cluster.local/ns/monitoring/sa/prometheus-k8s": {"monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"}},
}

// call is one allowed connection: caller (an app label, or an external
// principal) to callee (an app label).
type call struct{ caller, callee string }

// authorizedCalls returns every (caller, callee) pair the ALLOW policies
// grant, callers by pod app label (for service accounts of the build) or
// principal (external).
func authorizedCalls(t testing.TB, app, istio []object) map[call]bool {
	t.Helper()
	serving := map[string]bool{}
	appsOf := map[string][]string{} // service account -> app labels of its pods
	for _, w := range workloads(t, app) {
		if w.serving {
			serving[w.labels["app"]] = true
		}
		appsOf[w.serviceAccount] = append(appsOf[w.serviceAccount], w.labels["app"])
	}
	out := map[call]bool{}
	for _, p := range all[*istiosecurity.AuthorizationPolicy](istio) {
		if p.Spec.Action != securityapi.AuthorizationPolicy_ALLOW {
			continue
		}
		callees := sortedKeys(serving)
		if sel := p.Spec.GetSelector().GetMatchLabels(); sel != nil {
			callees = []string{sel["app"]}
		}
		for _, r := range p.Spec.Rules {
			for _, f := range r.From {
				for _, pr := range f.GetSource().GetPrincipals() {
					callers := []string{pr}
					if sa, ok := strings.CutPrefix(pr, principalPrefix); ok {
						callers = appsOf[sa]
					}
					for _, caller := range callers {
						for _, callee := range callees {
							out[call{caller, callee}] = true
						}
					}
				}
			}
		}
	}
	return out
}

// appsSelected returns the app labels a NetworkPolicy pod selector picks
// among the build's pods (an empty selector: all of them).
func appsSelected(t testing.TB, sel labels.Selector, pods []map[string]string) []string {
	t.Helper()
	var out []string
	for _, p := range pods {
		if sel.Matches(labels.Set(p)) && !slices.Contains(out, p["app"]) {
			out = append(out, p["app"])
		}
	}
	return out
}

// npSelector is a NetworkPolicy's pod selector (empty: every pod).
func npSelector(t testing.TB, s *metav1.LabelSelector) labels.Selector {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// TestNetworkPoliciesMatchAuthorization: the NetworkPolicies deny by
// default and then allow exactly the connections the AuthorizationPolicies
// allow (ingress at the callee, egress at the caller inside the
// namespace), on ports the callee's pods listen on; and Redis and Kafka
// egress exactly for the pods configured to use them, on the ports of
// recsys-config.
func TestNetworkPoliciesMatchAuthorization(t *testing.T) {
	istio := build(t, istioDir)
	nps := all[*networkingv1.NetworkPolicy](istio)
	if !slices.ContainsFunc(nps, func(np *networkingv1.NetworkPolicy) bool {
		return len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 &&
			len(np.Spec.PolicyTypes) == 2 && len(np.Spec.Ingress) == 0 && len(np.Spec.Egress) == 0
	}) {
		t.Error("istio: no default-deny NetworkPolicy (empty pod selector, Ingress and Egress, no rules)")
	}
	for _, b := range meshBuilds {
		app := build(t, b)
		var pods []map[string]string
		ports := map[string][]int32{} // app -> container ports
		for _, w := range workloads(t, app) {
			l := w.labels // Argo pods: the WorkflowTemplate's podMetadata
			pods = append(pods, l)
			for _, c := range w.containers {
				for _, p := range c.Ports {
					ports[l["app"]] = append(ports[l["app"]], p.ContainerPort)
				}
			}
		}
		want := authorizedCalls(t, app, istio)
		ingress, egress := map[call]bool{}, map[call]bool{}
		anyPort := map[int32][]string{} // port -> apps allowed to reach any address on it
		for _, np := range nps {
			sel := npSelector(t, &np.Spec.PodSelector)
			selected := appsSelected(t, sel, pods)
			for _, rule := range np.Spec.Ingress {
				for _, peer := range rule.From {
					caller, err := peerName(peer)
					if err != nil {
						t.Errorf("NetworkPolicy %s: %v", np.Name, err)
						continue
					}
					for _, callee := range selected {
						if caller == "" {
							t.Errorf("NetworkPolicy %s: ingress from any pod of the namespace", np.Name)
							continue
						}
						for _, c := range expandCaller(t, caller, pods) {
							ingress[call{c, callee}] = true
						}
						for _, p := range rule.Ports {
							if p.Port != nil && !slices.Contains(ports[callee], p.Port.IntVal) && !otherAppPort(ports, p.Port.IntVal) {
								t.Errorf("%s: NetworkPolicy %s: port %d is no container port of %s", b, np.Name, p.Port.IntVal, callee)
							}
						}
					}
				}
			}
			for _, rule := range np.Spec.Egress {
				if len(rule.To) == 0 {
					for _, p := range rule.Ports {
						anyPort[p.Port.IntVal] = append(anyPort[p.Port.IntVal], selected...)
					}
					continue
				}
				for _, peer := range rule.To {
					if peer.NamespaceSelector != nil || peer.PodSelector == nil {
						continue // DNS, istiod: beneath the mesh
					}
					for _, callee := range appsSelected(t, npSelector(t, peer.PodSelector), pods) {
						for _, caller := range selected {
							egress[call{caller, callee}] = true
						}
					}
				}
			}
		}
		for c := range want {
			if !ingress[c] {
				t.Errorf("%s: authorization lets %s call %s, but no NetworkPolicy lets it in", b, c.caller, c.callee)
			}
			if !strings.Contains(c.caller, "/") && !egress[c] {
				t.Errorf("%s: authorization lets %s call %s, but no NetworkPolicy lets %s out to it", b, c.caller, c.callee, c.caller)
			}
		}
		for c := range ingress {
			if !want[c] {
				t.Errorf("%s: a NetworkPolicy lets %s reach %s, which no AuthorizationPolicy allows", b, c.caller, c.callee)
			}
		}
		for c := range egress {
			if !want[c] {
				t.Errorf("%s: a NetworkPolicy lets %s out to %s, which no AuthorizationPolicy allows", b, c.caller, c.callee)
			}
		}

		cfg := recsysConfig(t, app).Data
		for dep, key := range map[string]string{"redis": "redis", "kafka": "kafka"} {
			port := firstPort(t, cfg[key])
			users := usersOf(t, app, key)
			allowed := anyPort[port]
			slices.Sort(users)
			slices.Sort(allowed)
			if !slices.Equal(slices.Compact(users), slices.Compact(allowed)) {
				t.Errorf("%s: %s (port %d) is used by %v, but NetworkPolicies let %v reach it", b, dep, port, users, allowed)
			}
		}
	}
}

// otherAppPort: a port listed for several apps in one rule (the metrics
// rule names every HTTP port) need only be some app's.
func otherAppPort(ports map[string][]int32, p int32) bool {
	for _, ps := range ports {
		if slices.Contains(ps, p) {
			return true
		}
	}
	return false
}

// peerName names a NetworkPolicy peer: an app label in the namespace, or
// the external principal it selects.
func peerName(peer networkingv1.NetworkPolicyPeer) (string, error) {
	if peer.IPBlock != nil {
		return "", fmt.Errorf("ipBlock peer %v: name callers by pod", peer.IPBlock)
	}
	if peer.NamespaceSelector == nil {
		if peer.PodSelector == nil {
			return "", nil
		}
		if a := peer.PodSelector.MatchLabels["app"]; a != "" && len(peer.PodSelector.MatchLabels) == 1 {
			return "app=" + a, nil
		}
		return "", fmt.Errorf("pod selector %v: select callers by app label", peer.PodSelector)
	}
	for pr, ext := range externalPeers {
		if peer.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] == ext.namespace && peer.PodSelector != nil &&
			fmt.Sprint(peer.PodSelector.MatchLabels) == fmt.Sprint(ext.labels) {
			return pr, nil
		}
	}
	return "", fmt.Errorf("peer %v/%v is no known external identity", peer.NamespaceSelector, peer.PodSelector)
}

func expandCaller(t testing.TB, name string, pods []map[string]string) []string {
	t.Helper()
	if a, ok := strings.CutPrefix(name, "app="); ok {
		return []string{a}
	}
	return []string{name}
}

// usersOf returns the app labels of the pods configured to use a
// dependency (recsys-config key redis or kafka): a RECSYS_<KEY> variable,
// or the trainer learning from the logs in Kafka.
func usersOf(t testing.TB, objs []object, key string) []string {
	t.Helper()
	var out []string
	env := "RECSYS_" + strings.ToUpper(key)
	for _, w := range workloads(t, objs) {
		app := w.labels["app"]
		for _, c := range w.containers {
			if slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == env }) ||
				slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(strings.TrimLeft(a, "-"), key+"=") }) {
				out = append(out, app)
			}
		}
	}
	return out
}

// firstPort is the port of the first address of a recsys-config value
// (host:port, or cluster://host:port,...).
func firstPort(t testing.TB, v string) int32 {
	t.Helper()
	first, _, _ := strings.Cut(strings.TrimPrefix(v, "cluster://"), ",")
	_, port, ok := strings.Cut(first, ":")
	var n int32
	if _, err := fmt.Sscan(port, &n); !ok || err != nil {
		t.Fatalf("recsys-config value %q: no port", v)
	}
	return n
}
