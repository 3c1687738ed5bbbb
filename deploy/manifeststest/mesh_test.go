package manifeststest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	securityapi "istio.io/api/security/v1beta1"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	networkingapi "istio.io/api/networking/v1alpha3"

	"github.com/recsys/recsys/libs/servicemap"

	// The gRPC services whose method paths the authorization policies name.
	_ "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	_ "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	_ "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	_ "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
)

// externalPrincipals are the identities from outside namespace recsys that
// the policies may name (their service accounts are the mesh's, not ours).
var externalPrincipals = map[string]string{
	"cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account": "the ingress gateway",
	"cluster.local/ns/monitoring/sa/prometheus-k8s":                         "Prometheus",
}

const (
	principalPrefix  = "cluster.local/ns/" + namespace + "/sa/"
	ingressPrincipal = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
	recordEvents     = "/recsys.feedback.v1.FeedbackService/RecordEvents"
)

// routeDestinations are the destinations a route sends requests to.
func routeDestinations(r *networkingapi.HTTPRoute) []*networkingapi.Destination {
	var out []*networkingapi.Destination
	for _, d := range r.Route {
		out = append(out, d.Destination)
	}
	return out
}

// host returns the Service name of an in-namespace host
// (name.recsys.svc.cluster.local), or "".
func host(h string) string {
	name, ok := strings.CutSuffix(h, "."+namespace+".svc.cluster.local")
	if !ok || strings.Contains(name, ".") {
		return ""
	}
	return name
}

// TestDestinationRules: every DestinationRule is for a Service of the
// mesh builds, uses Istio mutual TLS, bounds connections, ejects outliers,
// and each subset selects pods behind that Service.
func TestDestinationRules(t *testing.T) {
	drs := all[*istionetworking.DestinationRule](build(t, istioDir))
	if len(drs) == 0 {
		t.Fatal("istio: no DestinationRule")
	}
	for _, dr := range drs {
		tp := dr.Spec.GetTrafficPolicy()
		if tp.GetTls().GetMode() != networkingapi.ClientTLSSettings_ISTIO_MUTUAL {
			t.Errorf("DestinationRule %s: TLS mode %v, want ISTIO_MUTUAL", dr.Name, tp.GetTls().GetMode())
		}
		if tp.GetOutlierDetection() == nil || tp.GetConnectionPool() == nil {
			t.Errorf("DestinationRule %s: want outlierDetection and connectionPool", dr.Name)
		}
		for _, b := range meshBuilds {
			objs := build(t, b)
			svc := named[*corev1.Service](objs, host(dr.Spec.Host))
			if svc == nil {
				t.Errorf("%s: DestinationRule %s: host %s is no Service of the build", b, dr.Name, dr.Spec.Host)
				continue
			}
			for _, sub := range dr.Spec.Subsets {
				if err := subsetError(objs, svc, sub); err != nil {
					t.Errorf("%s: DestinationRule %s: %v", b, dr.Name, err)
				}
			}
		}
	}
	ranking := named[*istionetworking.DestinationRule](build(t, istioDir), "ranking")
	if ranking == nil || len(ranking.Spec.Subsets) < 2 {
		t.Error("istio: DestinationRule ranking needs the subsets v1 and v2")
	}
}

// subsetError says why a subset selects no pod behind the Service.
func subsetError(objs []object, svc *corev1.Service, sub *networkingapi.Subset) error {
	if len(sub.Labels) == 0 {
		return fmt.Errorf("subset %s has no labels", sub.Name)
	}
	for _, d := range all[*appsv1.Deployment](objs) {
		pod := labels.Set(d.Spec.Template.Labels)
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(pod) && labels.SelectorFromSet(sub.Labels).Matches(pod) {
			return nil
		}
	}
	return fmt.Errorf("subset %s (labels %v) matches no Deployment behind Service %s", sub.Name, sub.Labels, svc.Name)
}

// request is what a route match is tested against. port 0: the gateway
// (its routes match no port).
type request struct {
	path, method string
	port         uint32
}

// mayMatch reports whether a route may take the request: it certainly does
// when a match entry has only conditions the request meets, and may when an
// entry also needs headers the request could carry.
func mayMatch(r *networkingapi.HTTPRoute, req request) (may, certain bool) {
	if len(r.Match) == 0 {
		return true, true
	}
	for _, m := range r.Match {
		if !stringMatches(m.Uri, req.path) || !stringMatches(m.Method, req.method) || (m.Port != 0 && m.Port != req.port) {
			continue
		}
		may = true
		if len(m.Headers) == 0 && len(m.QueryParams) == 0 && len(m.Gateways) == 0 && m.Authority == nil && len(m.WithoutHeaders) == 0 {
			certain = true
		}
	}
	return may, certain
}

func stringMatches(s *networkingapi.StringMatch, v string) bool {
	switch {
	case s == nil:
		return true
	case s.GetExact() != "":
		return s.GetExact() == v
	case s.GetPrefix() != "":
		return strings.HasPrefix(v, s.GetPrefix())
	case s.GetRegex() != "":
		return regexp.MustCompile("^(?:" + s.GetRegex() + ")$").MatchString(v)
	}
	return true
}

// TestRecordEventsNotRetried: wherever a RecordEvents call (gRPC, gRPC-Web
// or REST POST /v1/events) can be routed, the route retries nothing. A route
// that does not set retries gets Istio's default of two, so attempts: 0
// must be explicit.
func TestRecordEventsNotRetried(t *testing.T) {
	fb := servicemap.Of(servicemap.Feedback)
	reqs := []request{{recordEvents, "POST", uint32(fb.GRPCPort)}, {recordEvents, "POST", uint32(fb.HTTPPort)}, {"/v1/events", "POST", uint32(fb.HTTPPort)}}
	checked := 0
	for _, vs := range all[*istionetworking.VirtualService](build(t, istioDir)) {
		if !slices.ContainsFunc(vs.Spec.Http, func(r *networkingapi.HTTPRoute) bool {
			return slices.ContainsFunc(r.Route, func(d *networkingapi.HTTPRouteDestination) bool { return host(d.Destination.Host) == "feedback" })
		}) {
			continue // a VirtualService that never routes to feedback never sees its calls
		}
		checked++
		for _, req := range reqs {
			if len(vs.Spec.Gateways) > 0 {
				req.port = 0
			}
			for _, err := range retryErrors(vs.Spec.Http, req) {
				t.Errorf("VirtualService %s: %v", vs.Name, err)
			}
		}
	}
	if checked < 2 {
		t.Errorf("%d VirtualServices route to feedback, want the mesh's and the gateway's", checked)
	}
	if errs := retryErrors([]*networkingapi.HTTPRoute{{Name: "all", Route: []*networkingapi.HTTPRouteDestination{{
		Destination: &networkingapi.Destination{Host: "feedback.recsys.svc.cluster.local"}}}}}, reqs[0]); len(errs) == 0 {
		t.Error("retryErrors(a catch-all route to feedback without retries) = no errors, want one")
	}
}

// retryErrors walks the routes in order, as Envoy does, up to the first
// that certainly takes req, and reports each one that may take it to
// feedback with retries.
func retryErrors(routes []*networkingapi.HTTPRoute, req request) []error {
	var errs []error
	for _, r := range routes {
		may, certain := mayMatch(r, req)
		if !may {
			continue
		}
		toFeedback := slices.ContainsFunc(r.Route, func(d *networkingapi.HTTPRouteDestination) bool {
			return host(d.Destination.Host) == "feedback"
		})
		if toFeedback && (r.Retries == nil || r.Retries.Attempts != 0) {
			errs = append(errs, fmt.Errorf("route %q takes %s %s to feedback with retries %v; want attempts: 0", r.Name, req.method, req.path, r.Retries))
		}
		if certain {
			if !toFeedback {
				errs = append(errs, fmt.Errorf("route %q takes %s %s, but not to feedback", r.Name, req.method, req.path))
			}
			break
		}
	}
	return errs
}

// TestCORS: the gateway's CORS origins are the services' (recsys-config
// cors-origins), so a browser gets the same answer from both.
func TestCORS(t *testing.T) {
	public := named[*istionetworking.VirtualService](build(t, istioDir), "recsys-public")
	if public == nil {
		t.Fatal("istio: no VirtualService recsys-public")
	}
	for _, b := range []string{base, prod, gpu} {
		allowed := strings.Split(recsysConfig(t, build(t, b)).Data["cors-origins"], ",")
		for _, r := range public.Spec.Http {
			if r.DirectResponse != nil {
				continue // answered by the gateway itself
			}
			if r.CorsPolicy == nil || len(r.CorsPolicy.AllowOrigins) == 0 {
				t.Errorf("VirtualService recsys-public route %q: no corsPolicy", r.Name)
				continue
			}
			for _, o := range r.CorsPolicy.AllowOrigins {
				if !slices.Contains(allowed, o.GetExact()) {
					t.Errorf("%s: VirtualService recsys-public route %q allows origin %v, which recsys-config cors-origins %q lacks", b, r.Name, o, allowed)
				}
			}
		}
	}
	for _, g := range all[*istionetworking.Gateway](build(t, istioDir)) {
		for _, s := range g.Spec.Servers {
			for _, h := range s.Hosts {
				if !slices.Contains(public.Spec.Hosts, h) {
					t.Errorf("Gateway %s serves host %s, which no VirtualService routes", g.Name, h)
				}
			}
		}
	}
}

// TestPeerAuthentication: mutual TLS is STRICT for the whole namespace.
func TestPeerAuthentication(t *testing.T) {
	ok := false
	for _, pa := range all[*istiosecurity.PeerAuthentication](build(t, istioDir)) {
		if pa.Spec.Selector == nil && pa.Spec.GetMtls().GetMode() == securityapi.PeerAuthentication_MutualTLS_STRICT {
			ok = true
		}
		for port, m := range pa.Spec.PortLevelMtls {
			if m.GetMode() != securityapi.PeerAuthentication_MutualTLS_STRICT {
				t.Errorf("PeerAuthentication %s: port %d is %v, want STRICT", pa.Name, port, m.GetMode())
			}
		}
	}
	if !ok {
		t.Error("istio: no namespace-wide PeerAuthentication with mode STRICT")
	}
}

// TestAuthorization: deny by default, every principal is a service account
// that exists (or a named mesh identity), every method path is a real gRPC
// method, and the policies grant what docs/architecture.md ("Rollout: arms, subsets and the mesh") allows and no more: web
// calls only ranking and feedback, ranking only reads features, nobody
// upserts through the feature services (the batch jobs write Redis), and
// every caller a rule names really makes the call.
func TestAuthorization(t *testing.T) {
	policies := all[*istiosecurity.AuthorizationPolicy](build(t, istioDir))
	app := build(t, prod)

	denyAll := slices.ContainsFunc(policies, func(p *istiosecurity.AuthorizationPolicy) bool {
		s := &p.Spec
		allowNothing := s.Selector == nil && s.TargetRef == nil && len(s.TargetRefs) == 0 && s.Action == securityapi.AuthorizationPolicy_ALLOW && len(s.Rules) == 0 && s.GetProvider() == nil
		denyEverything := s.Selector == nil && s.Action == securityapi.AuthorizationPolicy_DENY && len(s.Rules) == 1 && len(s.Rules[0].From) == 0 && len(s.Rules[0].To) == 0 && len(s.Rules[0].When) == 0
		return allowNothing || denyEverything
	})
	if !denyAll {
		t.Error("istio: no deny-by-default policy (an empty-spec ALLOW, or a DENY with one empty rule)")
	}

	// grants[principal] = callee apps and the paths they may call there.
	grants := map[string]map[string][]string{}
	for _, p := range policies {
		if len(p.Spec.Rules) == 0 {
			continue
		}
		if p.Spec.Action != securityapi.AuthorizationPolicy_ALLOW {
			t.Errorf("AuthorizationPolicy %s: action %v; only ALLOW policies are expected beside the default", p.Name, p.Spec.Action)
		}
		callee := "*"
		if sel := p.Spec.GetSelector().GetMatchLabels(); sel != nil {
			callee = sel["app"]
			if !matchesAny(labels.SelectorFromSet(sel), servingPods(t, app)) {
				t.Errorf("AuthorizationPolicy %s: selector %v matches no pod of %s", p.Name, sel, prod)
			}
		}
		for i, r := range p.Spec.Rules {
			var principals []string
			for _, f := range r.From {
				principals = append(principals, f.GetSource().GetPrincipals()...)
				if len(f.GetSource().GetNotPrincipals()) > 0 || len(f.GetSource().GetNamespaces()) > 0 || len(f.GetSource().GetRequestPrincipals()) > 0 {
					t.Errorf("AuthorizationPolicy %s rule %d: name callers by principal only", p.Name, i)
				}
			}
			if len(principals) == 0 {
				t.Errorf("AuthorizationPolicy %s rule %d: no principal: it would allow any caller", p.Name, i)
			}
			if len(r.To) == 0 {
				t.Errorf("AuthorizationPolicy %s rule %d: no operation: it would allow every path", p.Name, i)
			}
			var paths []string
			for _, to := range r.To {
				op := to.GetOperation()
				paths = append(paths, op.GetPaths()...)
				if len(op.GetPaths()) == 0 && len(op.GetNotPaths()) == 0 {
					t.Errorf("AuthorizationPolicy %s rule %d: an operation without paths", p.Name, i)
				}
				for _, path := range op.GetPaths() {
					if err := grpcPathError(path); err != nil {
						t.Errorf("AuthorizationPolicy %s rule %d: %v", p.Name, i, err)
					}
				}
				for _, np := range op.GetNotPaths() {
					paths = append(paths, "not "+np)
				}
			}
			for _, pr := range principals {
				if err := principalError(app, pr); err != nil {
					t.Errorf("AuthorizationPolicy %s rule %d: %v", p.Name, i, err)
				}
				if grants[pr] == nil {
					grants[pr] = map[string][]string{}
				}
				grants[pr][callee] = append(grants[pr][callee], paths...)
			}
		}
	}

	sa := func(name string) string { return principalPrefix + name }
	for callee := range grants[sa("web")] {
		if callee != "ranking" && callee != "feedback" {
			t.Errorf("web may call %s; it may call only ranking and feedback", callee)
		}
	}
	for callee, paths := range grants[sa("ranking")] {
		if callee != "userfeatures" && callee != "itemfeatures" {
			t.Errorf("ranking may call %s; it may call only the feature services", callee)
		}
		for _, path := range paths {
			if !strings.Contains(path, "/Get") && !strings.Contains(path, "/List") {
				t.Errorf("ranking may call %s on %s; it may only read", path, callee)
			}
		}
	}
	for pr, callees := range grants {
		for callee, paths := range callees {
			for _, path := range paths {
				if strings.Contains(path, "/Upsert") || strings.Contains(path, ":upsert") {
					t.Errorf("%s may call %s on %s; nothing in the cluster upserts through the feature services", pr, path, callee)
				}
				if callee == "*" && path != "/metrics" {
					t.Errorf("%s may call %s on every workload; only /metrics may be granted namespace-wide", pr, path)
				}
			}
		}
	}
	// Every in-namespace caller a rule names really calls that callee: its
	// pods are configured with the callee's address.
	for pr, callees := range grants {
		name, ok := strings.CutPrefix(pr, principalPrefix)
		if !ok {
			continue
		}
		for callee := range callees {
			if callee == "*" {
				continue
			}
			if !callsService(t, app, name, callee) {
				t.Errorf("a rule lets %s call %s, but no %s pod names %s's address in its args or environment: nothing makes that call", name, callee, name, callee)
			}
		}
	}
	for _, callee := range []string{"web", "ranking", "feedback"} {
		if len(grants[ingressPrincipal][callee]) == 0 {
			t.Errorf("the ingress gateway may not reach %s", callee)
		}
	}
	for callee := range grants[ingressPrincipal] {
		if callee != "web" && callee != "ranking" && callee != "feedback" {
			t.Errorf("the ingress gateway may reach %s; only web, ranking and feedback are public", callee)
		}
	}
}

// principalError says why a principal is unknown.
func principalError(app []object, p string) error {
	if name, ok := strings.CutPrefix(p, principalPrefix); ok {
		if named[*corev1.ServiceAccount](app, name) == nil {
			return fmt.Errorf("principal %s: no ServiceAccount %s in %s", p, name, prod)
		}
		return nil
	}
	if _, ok := externalPrincipals[p]; !ok {
		return fmt.Errorf("principal %s is neither %s<service account> nor a known mesh identity %v", p, principalPrefix, sortedKeys(externalPrincipals))
	}
	return nil
}

var grpcPath = regexp.MustCompile(`^/([a-z0-9_]+(?:\.[a-z0-9_]+)*\.[A-Z][A-Za-z0-9]*)/([A-Za-z0-9]*\*?)$`)

// grpcPathError says why a path that looks like a gRPC method path names no
// method of the recsys protos. Other paths (REST) pass.
func grpcPathError(path string) error {
	m := grpcPath.FindStringSubmatch(path)
	if m == nil {
		return nil
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(m[1]))
	if err != nil {
		return fmt.Errorf("path %s: no gRPC service %s", path, m[1])
	}
	svc, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return fmt.Errorf("path %s: %s is not a service", path, m[1])
	}
	method := m[2]
	if method == "*" || method == "" {
		return nil
	}
	if svc.Methods().ByName(protoreflect.Name(method)) == nil {
		return fmt.Errorf("path %s: service %s has no method %s", path, m[1], method)
	}
	return nil
}

// TestPolicyCheckersReject shows the principal and path checks failing.
func TestPolicyCheckersReject(t *testing.T) {
	app := build(t, prod)
	for _, p := range []string{principalPrefix + "nobody", "cluster.local/ns/other/sa/web", "*"} {
		if principalError(app, p) == nil {
			t.Errorf("principalError(%q) = nil, want an error", p)
		}
	}
	for _, p := range []string{"/recsys.ranking.v1.RankingService/Rnak", "/recsys.ranking.v1.RankService/Rank", "/recsys.feedback.v1.FeedbackService/UpsertEvents"} {
		if grpcPathError(p) == nil {
			t.Errorf("grpcPathError(%q) = nil, want an error", p)
		}
	}
	if err := grpcPathError(recordEvents); err != nil {
		t.Errorf("grpcPathError(%q) = %v, want nil", recordEvents, err)
	}
}
